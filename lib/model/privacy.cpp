// Privacy defences on the backbone and on sent rows (see privacy.h).
#include "model/privacy.h"

#include <fmt/format.h>

#include <string>

#include "common/error.h"
#include "common/hash.h"
#include "model/compat.h"

namespace pcmoe::model {

namespace {

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

}  // namespace

uint64_t backbone_init_seed(bool shared_init, uint64_t expert_seed, uint64_t private_seed) {
  return shared_init ? mix_seed(expert_seed, 0x5ba2edba'c6b0e000ULL) : private_seed;
}

Backbone initial_backbone(const ModelConfig& model, const TrainConfig& train, const PrivacyConfig& privacy,
                          uint64_t private_seed) {
  Backbone b(model, backbone_init_seed(privacy.shared_init, train.expert_seed, private_seed));
  if (privacy.rotate_hidden)
    rotate_hidden(b, random_rotation(model.d_model, mix_seed(private_seed, 0x0707a7e0ULL)));
  return b;
}

torch::Tensor random_rotation(int64_t d, uint64_t seed) {
  at::Generator gen = make_cpu_generator(seed);
  auto a = at::normal(0.0, 1.0, {d, d}, gen, torch::TensorOptions().dtype(torch::kFloat64));
  auto qr = at::linalg_qr(a);
  auto q = std::get<0>(qr);
  auto r = std::get<1>(qr);
  auto signs = torch::sign(r.diagonal());
  signs = torch::where(signs == 0, torch::ones_like(signs), signs);
  return (q * signs.unsqueeze(0)).to(torch::kFloat32);
}

void rotate_hidden(Backbone& backbone, const torch::Tensor& rotation) {
  torch::NoGradGuard no_grad;
  const int64_t d = backbone->config().d_model;
  PCMOE_CHECK_T(ModelError, rotation.dim() == 2 && rotation.size(0) == d && rotation.size(1) == d,
                "rotation must be [{}, {}]", d, d);
  for (auto& item : backbone->named_parameters()) {
    const std::string& name = item.key();
    torch::Tensor& w = item.value();
    const auto r = rotation.to(w.device(), w.scalar_type());
    if (name == "tok_emb" || name == "pos_emb" || name == "head" || ends_with(name, ".attn.wqkv") ||
        ends_with(name, ".gate") || ends_with(name, ".ffn.w1") || ends_with(name, ".ffn.w3")) {
      w.copy_(torch::matmul(w, r));  // reads the residual stream: x R (W R)^T = x W^T
    } else if (ends_with(name, ".attn.wo") || ends_with(name, ".ffn.w2")) {
      w.copy_(torch::matmul(r.t(), w));  // writes it: a (R^T W)^T = a W^T R
    } else if (ends_with(name, "norm1.weight") || ends_with(name, "norm2.weight") ||
               name == "norm_f.weight") {
      PCMOE_CHECK_T(ModelError, (w - w.mean()).abs().max().item<double>() == 0.0,
                    "privacy.rotate_hidden: '{}' is not uniform: a rotation would change the model", name);
    } else {
      throw ModelError(fmt::format("privacy.rotate_hidden: no rule for backbone parameter '{}'", name));
    }
  }
}

torch::Tensor clip_rows(const torch::Tensor& x, double clip) {
  if (clip <= 0) return x;
  auto norms = x.to(torch::kFloat32).norm(2, {1}, /*keepdim=*/true);
  auto scale = torch::clamp_max(clip / (norms + 1e-12), 1.0);
  return (x.to(torch::kFloat32) * scale).to(x.scalar_type());
}

torch::Tensor add_row_noise(const torch::Tensor& x, double clip, double sigma, at::Generator& gen) {
  if (sigma <= 0) return x;
  auto noise = at::normal(0.0, 1.0, x.sizes(), gen, torch::TensorOptions().dtype(torch::kFloat32));
  torch::Tensor unit;
  if (clip > 0) {
    unit = torch::full({x.size(0), 1}, clip, torch::kFloat32);
  } else {
    unit = x.to(torch::kFloat32).pow(2).mean(1, true).sqrt().to(torch::kCPU);
  }
  return x + (noise * unit * sigma).to(x.device()).to(x.scalar_type());
}

}  // namespace pcmoe::model
