// Schema of the `run:` block and of pcmoe-central's configuration (see run_config.h).
#include "common/run_config.h"
#include <fmt/format.h>

namespace pcmoe {

config::Schema<RunConfig> run_schema() {
  config::Schema<RunConfig> s;
  s.field("out_dir", &RunConfig::out_dir, "directory for checkpoints, metrics and the exported model",
          config::non_empty())
      .field("device", &RunConfig::device, "compute device: cpu, cuda or cuda:N")
      .field("threads", &RunConfig::threads, "CPU threads for libtorch; 0 = all cores",
             config::non_negative<int>())
      .field("seed", &RunConfig::seed, "backbone initialisation seed (private: never share it)")
      .field("checkpoint_every", &RunConfig::checkpoint_every,
             "steps between checkpoints; 0 = at the end and on SIGINT/SIGTERM only",
             config::non_negative<int64_t>())
      .field("resume", &RunConfig::resume, "continue from <out_dir>/checkpoint.pcmoe when it exists")
      .field("init_from", &RunConfig::init_from,
             "start from the weights of an exported model file (\"\" = fresh init)")
      .field("log_level", &RunConfig::log_level, "debug, info, warn, error or off",
             config::one_of({"debug", "info", "warn", "error", "off"}))
      .field("log_file", &RunConfig::log_file, "JSON-lines log file (\"\" = stderr)")
      .field("metrics_file", &RunConfig::metrics_file, "JSONL metrics file (\"\" = <out_dir>/metrics.jsonl)")
      .field("log_every", &RunConfig::log_every, "steps between train.step log lines",
             config::positive<int64_t>())
      .field(
          "max_minutes", &RunConfig::max_minutes,
          "wall-clock training budget in minutes; 0 = none. When spent: checkpoint, final evaluation, exit 0",
          config::non_negative<double>())
      .field(
          "stop_at_step", &RunConfig::stop_at_step,
          "stop (checkpoint, evaluate, exit 0) once this global step is reached, to resume later; 0 = never",
          config::non_negative<int64_t>())
      .field("save_on_exit", &RunConfig::save_on_exit,
             "write the final checkpoint and the exported model at the end; signals always checkpoint "
             "(benchmarks of large models turn this off)")
      .field("progress", &RunConfig::progress,
             "live progress line on stderr: auto (only on a terminal), on, off",
             config::one_of({"auto", "on", "off"}));
  return s;
}

static config::Schema<ProtocolConfig> protocol_schema() {
  config::Schema<ProtocolConfig> s;
  s.field("party_configs", &ProtocolConfig::party_configs,
          "mode protocol: the party YAML files whose data and backbone seeds to simulate (paths relative to "
          "this file)")
      .field("hub_config", &ProtocolConfig::hub_config,
             "mode protocol: the hub YAML whose turn seed, steps per turn and schedule to use")
      .field("schedule", &ProtocolConfig::schedule,
             "mode protocol: sequential | concurrent, overriding the hub config's hub.schedule (\"\" = "
             "the hub config's)",
             config::one_of({"", "sequential", "concurrent"}))
      .field("mix", &ProtocolConfig::mix,
             "mode mix: all = each step one batch of every party's data (the compute of a concurrent "
             "round); rotate = each step one party's batch, in turn (equal mix at a central step's compute)",
             config::one_of({"all", "rotate"}));
  return s;
}

config::Schema<CentralConfig> central_schema() {
  config::Schema<CentralConfig> s;
  s.section("model", &CentralConfig::model, model_schema())
      .section("train", &CentralConfig::train, train_schema())
      .section("data", &CentralConfig::data, data_schema())
      .section("run", &CentralConfig::run, run_schema())
      .field("mode", &CentralConfig::mode,
             "central: one model on all of data; protocol: the PC-MoE protocol simulated in one process; "
             "mix: one model on the party configs' data in equal shares (protocol.mix)",
             config::one_of({"central", "protocol", "mix"}))
      .section("protocol", &CentralConfig::protocol, protocol_schema())
      .include_key("preset");
  return s;
}

CentralConfig load_central_config(const std::string& path, const std::vector<std::string>& overrides) {
  CentralConfig c;
  config::Origins origins;
  auto schema = central_schema();
  schema.load_file(path, c, &origins);
  for (const auto& o : overrides) {
    schema.apply_override(o, c, &origins);
    if (o.rfind("model.", 0) == 0 || o.rfind("train.", 0) == 0) c.shared_overrides.push_back(o);
  }
  validate(c.model, origins);
  validate(c.train, origins);
  if (c.mode == "central") validate(c.data, origins);
  for (auto& p : c.protocol.party_configs) p = config::resolve_relative(path, p);
  if (!c.protocol.hub_config.empty())
    c.protocol.hub_config = config::resolve_relative(path, c.protocol.hub_config);
  if (c.mode != "central" && c.protocol.party_configs.empty()) {
    throw ConfigError(origins.describe("protocol.party_configs") +
                      fmt::format(": mode {} needs at least one party config", c.mode));
  }
  return c;
}

}  // namespace pcmoe
