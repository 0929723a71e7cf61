// Dense backbone blocks (see layers.h).
#include "model/layers.h"

#include <cmath>

#include "model/compat.h"

namespace pcmoe::model {

torch::Tensor normal_init(at::IntArrayRef shape, double std, at::Generator& gen) {
  return at::normal(0.0, std, shape, gen, torch::TensorOptions().dtype(torch::kFloat32));
}

torch::Tensor upcast(const torch::Tensor& x) {
  const auto t = x.scalar_type();
  return (t == torch::kBFloat16 || t == torch::kFloat16) ? x.to(torch::kFloat32) : x;
}

// ---- Norm ----
NormImpl::NormImpl(const ModelConfig& cfg) : rms_(cfg.norm == "rmsnorm"), eps_(cfg.norm_eps) {
  weight_ = register_parameter("weight", torch::ones({cfg.d_model}));
  if (!rms_) bias_ = register_parameter("bias", torch::zeros({cfg.d_model}));
}

torch::Tensor NormImpl::forward(const torch::Tensor& x) {
  if (!rms_) return torch::layer_norm(x, {x.size(-1)}, weight_, bias_, eps_);
  // Computed in fp32 whatever the input dtype (autocast keeps pow/mean in fp32 too).
  auto xf = upcast(x);
  auto y = xf * torch::rsqrt(xf.pow(2).mean(-1, /*keepdim=*/true) + eps_);
  return (y * weight_).to(x.scalar_type());
}

// ---- Rotary ----
RotaryImpl::RotaryImpl(const ModelConfig& cfg) {
  const int64_t half = cfg.head_dim() / 2;
  auto inv_freq =
      torch::pow(cfg.rope_theta, -torch::arange(0, half, torch::kFloat64) / static_cast<double>(half));
  auto pos = torch::arange(0, cfg.seq_len, torch::kFloat64);
  auto angles = torch::outer(pos, inv_freq);
  cos_ = register_buffer("cos", angles.cos().to(torch::kFloat32));
  sin_ = register_buffer("sin", angles.sin().to(torch::kFloat32));
}

torch::Tensor RotaryImpl::forward(const torch::Tensor& x) {
  const int64_t t = x.size(2);
  const int64_t half = x.size(3) / 2;
  auto cos = cos_.narrow(0, 0, t).to(x.scalar_type());
  auto sin = sin_.narrow(0, 0, t).to(x.scalar_type());
  auto x1 = x.narrow(-1, 0, half);
  auto x2 = x.narrow(-1, half, half);
  return torch::cat({x1 * cos - x2 * sin, x1 * sin + x2 * cos}, -1);
}

// ---- Attention ----
AttentionImpl::AttentionImpl(const ModelConfig& cfg, at::Generator& gen)
    : n_heads_(cfg.n_heads), head_dim_(cfg.head_dim()), use_rope_(cfg.pos_encoding == "rope") {
  const double out_std = cfg.init_std / std::sqrt(2.0 * cfg.n_layers);
  wqkv_ = register_parameter("wqkv", normal_init({3 * cfg.d_model, cfg.d_model}, cfg.init_std, gen));
  wo_ = register_parameter("wo", normal_init({cfg.d_model, cfg.d_model}, out_std, gen));
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& x, Rotary& rope) {
  const int64_t b = x.size(0), t = x.size(1), d = x.size(2);
  auto qkv = torch::linear(x, wqkv_).view({b, t, 3, n_heads_, head_dim_}).permute({2, 0, 3, 1, 4});
  auto q = qkv[0], k = qkv[1], v = qkv[2];  // [B, H, T, D]
  if (use_rope_) {
    q = rope->forward(q);
    k = rope->forward(k);
  }
  auto y = causal_attention(q, k, v);  // [B, H, T, D]
  y = y.transpose(1, 2).reshape({b, t, d});
  return torch::linear(y, wo_);
}

// ---- FFN ----
torch::Tensor ffn_forward(const torch::Tensor& x, const torch::Tensor& w1, const torch::Tensor& w3,
                          const torch::Tensor& w2, bool swiglu) {
  if (swiglu) {
    return torch::linear(torch::silu(torch::linear(x, w1)) * torch::linear(x, w3), w2);
  }
  return torch::linear(torch::gelu(torch::linear(x, w1)), w2);
}

DenseFFNImpl::DenseFFNImpl(const ModelConfig& cfg, int d_hidden, at::Generator& gen)
    : swiglu_(cfg.activation == "swiglu") {
  const double out_std = cfg.init_std / std::sqrt(2.0 * cfg.n_layers);
  w1_ = register_parameter("w1", normal_init({d_hidden, cfg.d_model}, cfg.init_std, gen));
  if (swiglu_) w3_ = register_parameter("w3", normal_init({d_hidden, cfg.d_model}, cfg.init_std, gen));
  w2_ = register_parameter("w2", normal_init({cfg.d_model, d_hidden}, out_std, gen));
}

torch::Tensor DenseFFNImpl::forward(const torch::Tensor& x) { return ffn_forward(x, w1_, w3_, w2_, swiglu_); }

}  // namespace pcmoe::model
