// Owns checkpoint and exported-model files of trainers (pcmoe tensor files, written atomically):
//   kind "central": backbone + all experts + optimizer state + step + data position;
//   kind "party":   a party's backbone, its expert shard and their optimizer states;
//   kind "export":  a standalone model — a backbone plus every expert — what pcmoe-eval and
//                   pcmoe-central read (init_from), and what a federation participant takes home.
// Tensor names: "backbone.<param>", "experts.l<layer>.e<expert>.<w>", "opt.<param>.<state>".
#pragma once

#include <torch/torch.h>

#include <map>
#include <string>

#include "common/model_config.h"
#include "common/tensor_file.h"
#include "model/backbone.h"
#include "model/expert.h"
#include "model/tensor_io.h"

namespace pcmoe::train {

constexpr const char* kCheckpointFormat = "pcmoe-checkpoint-1";

// Writes `tensors` and `meta` (format, model_yaml added) atomically to `path`.
void save_checkpoint(const std::string& path, const ModelConfig& model,
                     std::map<std::string, std::string> meta, const model::NamedTensors& tensors);

// Reads a checkpoint and checks it was made for `model` (same model block); throws DataError /
// ConfigError naming the path and the first differing key.
TensorFile load_checkpoint(const std::string& path, const ModelConfig& model);

// Writes an exported model: the backbone and every expert of the pool.
void export_model(const std::string& path, const ModelConfig& model, model::Backbone& backbone,
                  model::ExpertShard& experts, std::map<std::string, std::string> meta);

// Loads the weights of an exported model (or any checkpoint holding a backbone and all experts).
void load_model_weights(const TensorFile& file, model::Backbone& backbone, model::ExpertShard& experts);

int64_t meta_int(const TensorFile& file, const std::string& key, int64_t fallback);
// The global step a checkpoint file was taken at: 0 if there is no file or it cannot be read.
int64_t checkpoint_step(const std::string& path);

}  // namespace pcmoe::train
