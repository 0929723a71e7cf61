// Owns pcmoe-central's training loop in mode central: one backbone and every expert in one
// process (the centralised baseline on the union of the data, or the isolated baseline on one
// party's data). Step: batch -> forward -> backward -> global-norm clip -> AdamW; held-out
// evaluation every train.eval_every steps; metrics JSONL; checkpoints; exact resume; SIGINT and
// SIGTERM checkpoint and return cleanly.
#pragma once

#include <cstdint>
#include <string>

#include "common/run_config.h"

namespace pcmoe::train {

struct TrainSummary {
  int64_t steps_done = 0;   // global step reached
  double last_loss = -1;    // training loss of the last step
  double eval_loss = -1;    // final held-out loss
  double eval_bpb = -1;     // final held-out bits per byte
  double wall_s = 0;        // training wall-clock time
  double tokens_per_s = 0;  // mean training throughput
  uint64_t peak_memory_bytes = 0;
  uint64_t peak_reserved_bytes = 0;
  uint64_t footprint_estimate_bytes = 0;
  uint64_t optimizer_state_params = 0;  // parameter tensors holding AdamW state at the end  //
                                        // model/footprint.h, for comparison with the measured peak
  bool interrupted = false;             // stopped by a signal (checkpoint written)
  std::string checkpoint_path;
  std::string export_path;
};

// Runs training as configured. Throws pcmoe::Error subclasses on failures.
TrainSummary run_central(const CentralConfig& cfg);

}  // namespace pcmoe::train
