// Owns pcmoe-eval's job: the held-out loss and bits per byte of a checkpoint or exported model
// file (a backbone plus every expert), on the held-out split of a data config, in one process.
#pragma once

#include <cstdint>
#include <string>

#include "common/json.h"
#include "common/run_config.h"

namespace pcmoe::train {

// Loads `path` (checked against cfg.model), evaluates `batches` held-out batches of cfg.data on
// cfg.run.device, and returns {checkpoint, step, loss, bpb, tokens, byte_targets, batches}.
// Throws DataError / ConfigError naming the file, ModelError for tensor failures.
JsonObject evaluate_model_file(const CentralConfig& cfg, const std::string& path, int batches);

}  // namespace pcmoe::train
