// Owns the shared model and training configuration (the `model:` and `train:` blocks of a preset)
// and its schema. Every participant of a federation must agree on both: model_config_hash() is
// what the hub compares at registration. No libtorch here.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/config_schema.h"

namespace pcmoe {

struct RouterConfig {
  double aux_loss_coef = 0.01;     // Switch/GShard load-balancing loss weight
  double z_loss_coef = 0.001;      // router z-loss weight
  bool normalize_topk = false;     // renormalise the k gate values to sum to 1
  double capacity_factor = 0.0;    // 0: dropless; else each expert takes at most cf*T*k/m rows
  double balance_bias_rate = 0.0;  // >0: per-expert selection bias nudged by the global expert load
};

struct ModelConfig {
  std::string tokenizer = "byte";
  int vocab_size = 264;  // >= the tokenizer's size (byte: 259), rounded for fast matmuls
  int seq_len = 128;
  int d_model = 128;
  int n_layers = 4;
  int n_heads = 4;
  int d_ff = 256;        // hidden size of each expert
  int d_ff_dense = 512;  // hidden size of the dense FFN in non-MoE layers
  int n_experts = 8;
  int top_k = 2;
  std::string moe_layers = "all";  // "all", "odd", "even", or a comma list like "1,3"
  std::string activation = "swiglu";
  std::string norm = "rmsnorm";
  std::string pos_encoding = "rope";
  double rope_theta = 10000.0;
  double norm_eps = 1e-5;
  bool tie_embeddings = true;
  double init_std = 0.02;
  RouterConfig router;

  // Indices of the MoE layers, parsed from moe_layers. Throws ConfigError.
  std::vector<int> moe_layer_indices() const;
  bool is_moe_layer(int layer) const;
  int head_dim() const { return d_model / n_heads; }
};

struct TrainConfig {
  int64_t steps = 1000;  // total optimizer steps (in a federation: global steps over all parties)
  int batch_size = 16;
  double lr = 3e-3;
  double min_lr_ratio = 0.1;
  int64_t warmup_steps = 50;
  double weight_decay = 0.1;
  double beta1 = 0.9;
  double beta2 = 0.95;
  double adam_eps = 1e-8;
  double grad_clip = 1.0;        // global-norm clipping; 0 disables
  uint64_t expert_seed = 1234;   // initialises the shared experts (shared by design)
  double expert_lr_scale = 1.0;  // the experts' learning rate as a multiple of the schedule's
  std::string dtype = "fp32";    // fp32 | bf16 (bf16 autocast on CUDA, fp32 master weights)
  int64_t eval_every = 100;
  int eval_batches = 8;
};

// The preset: model + train, what every participant must share.
struct Preset {
  ModelConfig model;
  TrainConfig train;
};

config::Schema<RouterConfig> router_schema();
config::Schema<ModelConfig> model_schema();
config::Schema<TrainConfig> train_schema();
config::Schema<Preset> preset_schema();

// Cross-field checks (d_model % n_heads, top_k <= n_experts, ...). Throws ConfigError naming keys.
void validate(const ModelConfig& m, const config::Origins& origins, const std::string& prefix = "model");
void validate(const TrainConfig& t, const config::Origins& origins, const std::string& prefix = "train");

// Stable hex hash of the canonical text of model + train. Parties and hub must match.
std::string model_config_hash(const ModelConfig& m, const TrainConfig& t);

}  // namespace pcmoe
