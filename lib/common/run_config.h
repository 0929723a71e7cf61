// Owns the per-run settings of a trainer process (`run:` block: output paths, device, threads,
// checkpointing, logging, time budget) and the whole configuration of pcmoe-central/pcmoe-eval
// (preset + data + run). No libtorch.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/config_schema.h"
#include "common/data_config.h"
#include "common/model_config.h"

namespace pcmoe {

struct RunConfig {
  std::string out_dir = "runs/central";  // checkpoints, metrics, exported model
  std::string device = "cpu";            // cpu | cuda | cuda:N
  int threads = 0;                       // intra-op CPU threads; 0 = all cores
  uint64_t seed = 1;                     // backbone initialisation seed (private per participant)
  int64_t checkpoint_every = 0;          // steps between checkpoints; 0 = at the end and on signals only
  bool resume = true;                    // continue from <out_dir>/checkpoint.pcmoe when it exists
  std::string init_from;                 // start from the weights of an exported model file
  std::string log_level = "info";
  std::string log_file;      // JSON-lines log; "" = stderr
  std::string metrics_file;  // JSONL metrics; "" = <out_dir>/metrics.jsonl
  int64_t log_every = 10;    // steps between train.step log lines
  double max_minutes = 0;    // wall-clock training budget; 0 = none (stop, checkpoint, evaluate)
  int64_t stop_at_step =
      0;  // stop (checkpoint, evaluate, exit 0) once this global step is reached; 0 = never
  std::string progress = "auto";  // live progress line: auto (when stderr is a terminal) | on | off
  bool save_on_exit = true;       // final checkpoint and exported model at the end (benchmarks turn it off)
};

// pcmoe-central: `preset:` + data + run. mode central trains one model on all of `data`;
// mode protocol simulates the PC-MoE protocol in one process from the listed party configs.
struct ProtocolConfig {
  std::vector<std::string> party_configs;  // party YAML files (their data and backbone seeds)
  std::string hub_config;                  // hub YAML (turn seed, steps per turn, schedule)
  std::string mix = "all";                 // mode mix: all | rotate
  std::string schedule;                    // mode protocol: "" = the hub config's | sequential | concurrent
};

struct CentralConfig {
  ModelConfig model;
  TrainConfig train;
  DataConfig data;
  RunConfig run;
  std::string mode = "central";  // central | protocol | mix
  ProtocolConfig protocol;
  // Not a YAML key: the --set overrides of model.* and train.*, which mode protocol applies to
  // the party configs too (every participant shares them).
  std::vector<std::string> shared_overrides;
};

config::Schema<RunConfig> run_schema();
config::Schema<CentralConfig> central_schema();

// Loads --config, applies --set overrides, validates. Throws ConfigError.
CentralConfig load_central_config(const std::string& path, const std::vector<std::string>& overrides);

}  // namespace pcmoe
