// Owns the backbone — everything except the experts: token (and optional position) embeddings,
// the pre-norm transformer blocks with their attention, dense FFNs and MoE routers (gates), the
// final norm and the LM head — plus the MoE layer logic that routes rows to experts through an
// ExpertDispatcher and combines their outputs. In PC-MoE the backbone is private to its party and
// is initialised from the party's own seed.
#pragma once

#include <torch/torch.h>

#include <vector>

#include "common/model_config.h"
#include "model/expert.h"
#include "model/layers.h"
#include "model/router.h"

namespace pcmoe::model {

struct ForwardResult {
  torch::Tensor loss;             // ce_loss + aux_loss: what backward() uses
  torch::Tensor ce_loss;          // mean cross-entropy over all targets (nats/token)
  torch::Tensor aux_loss;         // sum over MoE layers of aux_coef*balance + z_coef*z
  std::vector<LayerStats> stats;  // one per MoE layer, in layer order
  int64_t tokens = 0;             // targets in the batch
};

class BlockImpl : public torch::nn::Module {
 public:
  BlockImpl(const ModelConfig& cfg, int layer, at::Generator& gen);
  torch::Tensor forward(const torch::Tensor& x, Rotary& rope, ExpertDispatcher& experts, ForwardResult& out);
  bool is_moe() const { return moe_; }
  // Router selection bias (MoE layers only; a buffer, moved by the global expert load).
  torch::Tensor& balance_bias() { return bias_; }

 private:
  torch::Tensor moe_forward(const torch::Tensor& h, ExpertDispatcher& experts, ForwardResult& out);

  ModelConfig cfg_;
  int layer_;
  bool moe_;
  Norm norm1_{nullptr}, norm2_{nullptr};
  Attention attn_{nullptr};
  DenseFFN ffn_{nullptr};
  torch::Tensor gate_;  // [n_experts, d_model] router weight (MoE layers)
  torch::Tensor bias_;  // [n_experts] selection bias buffer (MoE layers)
};
TORCH_MODULE(Block);

class BackboneImpl : public torch::nn::Module {
 public:
  // All weights drawn from `seed`: a party's private seed (never shared, DESIGN.md: privacy).
  BackboneImpl(const ModelConfig& cfg, uint64_t seed);

  // tokens: [B, T+1] integer ids; inputs are [:, :T], targets [:, 1:].
  ForwardResult forward(const torch::Tensor& tokens, ExpertDispatcher& experts);
  // Nudges each MoE layer's selection bias towards balance: bias_e += rate * sign(1/m - load_e).
  // load[i][e]: share of routed tokens of expert e in the i-th MoE layer (sums to 1).
  void update_balance_bias(const std::vector<std::vector<double>>& load, double rate);
  const ModelConfig& config() const { return cfg_; }
  int64_t parameter_count() const;

 private:
  ModelConfig cfg_;
  torch::Tensor tok_emb_;  // [V, d]
  torch::Tensor pos_emb_;  // [seq_len, d] (learned positions only)
  torch::Tensor head_;     // [V, d] (untied only)
  Rotary rope_{nullptr};
  std::vector<Block> blocks_;
  Norm norm_f_{nullptr};
};
TORCH_MODULE(Backbone);

}  // namespace pcmoe::model
