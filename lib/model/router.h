// Owns top-k routing: router probabilities, expert selection over the available experts (with an
// optional per-expert selection bias), gate values, the Switch/GShard load-balancing loss, the
// router z-loss, an optional capacity limit, and the per-expert statistics reported to the hub.
#pragma once

#include <torch/torch.h>

#include <vector>

#include "common/model_config.h"

namespace pcmoe::model {

struct Routing {
  torch::Tensor expert_idx;  // [T, k] int64
  torch::Tensor gates;       // [T, k] fp32 gate values (0 for dropped assignments)
  torch::Tensor probs;       // [T, m] fp32 router probabilities
  torch::Tensor aux_loss;    // scalar: m * sum_e f_e * P_e
  torch::Tensor z_loss;      // scalar: mean(logsumexp(logits)^2)
  torch::Tensor keep;        // [T, k] bool: assignment kept (capacity); undefined when dropless
};

// Per MoE layer, per expert, for one step: tokens routed and mean router probability.
struct LayerStats {
  int layer = 0;
  std::vector<int64_t> counts;    // assignments per expert (after capacity drops)
  std::vector<double> gate_mean;  // mean router probability per expert over the step's tokens
};

// logits: [T, m] (any dtype; computed in fp32). available: [m] bool or undefined (all).
// bias: [m] fp32 selection bias or undefined (added to probabilities for top-k selection only).
Routing route(const torch::Tensor& logits, const ModelConfig& cfg, const torch::Tensor& available,
              const torch::Tensor& bias);

// Capacity per expert for T tokens (cfg.router.capacity_factor > 0), else -1.
int64_t expert_capacity(const ModelConfig& cfg, int64_t tokens);

}  // namespace pcmoe::model
