// Owns the dense building blocks of the backbone: norms, causal self-attention with RoPE or
// learned positions, the dense FFN, and deterministic initialisation helpers. Modules hold their
// parameters as registered tensors so names are stable ("blocks.0.attn.wqkv").
#pragma once

#include <torch/torch.h>

#include "common/model_config.h"

namespace pcmoe::model {

// Draws N(0, std) of `shape` from `gen` on the CPU (device-independent, reproducible).
torch::Tensor normal_init(at::IntArrayRef shape, double std, at::Generator& gen);

// x in at least fp32: bf16/fp16 become fp32, fp32/fp64 stay (fp64 is used by gradient checks).
torch::Tensor upcast(const torch::Tensor& x);

class NormImpl : public torch::nn::Module {
 public:
  NormImpl(const ModelConfig& cfg);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  bool rms_;
  double eps_;
  torch::Tensor weight_;
  torch::Tensor bias_;  // layernorm only
};
TORCH_MODULE(Norm);

// Rotary position embedding tables for seq_len positions (buffers, not parameters).
class RotaryImpl : public torch::nn::Module {
 public:
  RotaryImpl(const ModelConfig& cfg);
  // x: [B, H, T, D] -> rotated, T <= seq_len.
  torch::Tensor forward(const torch::Tensor& x);

 private:
  torch::Tensor cos_, sin_;  // [T, D/2]
};
TORCH_MODULE(Rotary);

class AttentionImpl : public torch::nn::Module {
 public:
  AttentionImpl(const ModelConfig& cfg, at::Generator& gen);
  // x: [B, T, d_model] -> [B, T, d_model]
  torch::Tensor forward(const torch::Tensor& x, Rotary& rope);

 private:
  int n_heads_;
  int head_dim_;
  bool use_rope_;
  torch::Tensor wqkv_;  // [3*d, d]
  torch::Tensor wo_;    // [d, d]
};
TORCH_MODULE(Attention);

// Dense FFN (SwiGLU or GELU). The same math as one expert, used in non-MoE layers.
class DenseFFNImpl : public torch::nn::Module {
 public:
  DenseFFNImpl(const ModelConfig& cfg, int d_hidden, at::Generator& gen);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  bool swiglu_;
  torch::Tensor w1_, w3_, w2_;
};
TORCH_MODULE(DenseFFN);

// The FFN math shared by dense FFNs and experts: x [R, d] with w1/w3 [h, d], w2 [d, h].
torch::Tensor ffn_forward(const torch::Tensor& x, const torch::Tensor& w1, const torch::Tensor& w3,
                          const torch::Tensor& w2, bool swiglu);

}  // namespace pcmoe::model
