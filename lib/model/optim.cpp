// AdamW, LR schedule and clipping (see optim.h).
#include "model/optim.h"

#include <fmt/format.h>

#include <cmath>
#include <map>

#include "common/error.h"
#include "model/compat.h"
#include "model/tensor_io.h"

namespace pcmoe::model {

double lr_at(const TrainConfig& cfg, int64_t step) {
  if (cfg.warmup_steps > 0 && step < cfg.warmup_steps) {
    return cfg.lr * static_cast<double>(step + 1) / static_cast<double>(cfg.warmup_steps);
  }
  const double span = static_cast<double>(std::max<int64_t>(1, cfg.steps - cfg.warmup_steps));
  const double progress = std::min(1.0, static_cast<double>(step - cfg.warmup_steps) / span);
  const double min_lr = cfg.lr * cfg.min_lr_ratio;
  return min_lr + 0.5 * (cfg.lr - min_lr) * (1.0 + std::cos(M_PI * progress));
}

double expert_lr_at(const TrainConfig& cfg, int64_t step) { return lr_at(cfg, step) * cfg.expert_lr_scale; }

double grad_sq_norm(const std::vector<torch::Tensor>& params) {
  std::vector<torch::Tensor> parts;
  for (const auto& p : params) {
    if (p.grad().defined()) parts.push_back(p.grad().to(torch::kFloat32).pow(2).sum());
  }
  if (parts.empty()) return 0.0;
  return torch::stack(parts).sum().to(torch::kFloat64).item<double>();
}

double clip_scale(double total_norm, double max_norm) {
  if (max_norm <= 0 || !(total_norm > max_norm)) return 1.0;
  return max_norm / (total_norm + 1e-6);
}

torch::Tensor grad_norm_tensor(const std::vector<torch::Tensor>& params) {
  std::vector<torch::Tensor> grads;
  for (const auto& p : params) {
    if (p.grad().defined()) grads.push_back(p.grad());
  }
  if (grads.empty()) return torch::zeros({}, torch::kFloat32);
  auto norms = at::_foreach_norm(grads, 2);
  return torch::stack(norms).to(torch::kFloat32).norm();
}

torch::Tensor clip_scale_tensor(const torch::Tensor& norm, double max_norm) {
  if (max_norm <= 0) return torch::ones({}, norm.options());
  // Same expression as clip_scale(): max_norm / (norm + 1e-6) when norm > max_norm, else 1.
  return torch::where(norm > max_norm, max_norm / (norm + 1e-6), torch::ones({}, norm.options()));
}

AdamW::AdamW(std::vector<NamedParam> params, const TrainConfig& cfg) : params_(std::move(params)), cfg_(cfg) {
  state_.resize(params_.size());
  for (const auto& p : params_) decay_.push_back(p.param.dim() >= 2);
}

std::vector<torch::Tensor> AdamW::tensors() const {
  std::vector<torch::Tensor> out;
  for (const auto& p : params_) out.push_back(p.param);
  return out;
}

void AdamW::zero_grad() {
  for (auto& p : params_) p.param.mutable_grad() = torch::Tensor();
}

void AdamW::reserve_state() {
  torch::NoGradGuard no_grad;
  reserved_ = true;
  for (size_t i = 0; i < params_.size(); ++i) init_state(i);
}

void AdamW::init_state(size_t i) {
  State& s = state_[i];
  if (!s.exp_avg.defined()) {
    s.exp_avg = torch::zeros_like(params_[i].param, torch::MemoryFormat::Preserve);
    s.exp_avg_sq = torch::zeros_like(params_[i].param, torch::MemoryFormat::Preserve);
  }
}

int AdamW::step(double lr, const torch::Tensor& clip) {
#if PCMOE_TORCH_HAS_FUSED_ADAMW
  torch::NoGradGuard no_grad;
  bool fused = true;
  for (const auto& p : params_) {
    if (p.param.grad().defined() && (!p.param.is_cuda() || p.param.scalar_type() != torch::kFloat32))
      fused = false;
  }
  if (fused) {
    std::vector<torch::Tensor> p[2], g[2], m[2], v[2], st[2];
    for (size_t i = 0; i < params_.size(); ++i) {
      if (!params_[i].param.grad().defined()) continue;
      init_state(i);
      State& s = state_[i];
      if (!s.step_t.defined()) {
        s.step_t =
            torch::full({}, static_cast<double>(s.step), params_[i].param.options().dtype(torch::kFloat32));
      }
      s.step += 1;
      const int k = decay_[i] ? 1 : 0;
      p[k].push_back(params_[i].param);
      g[k].push_back(params_[i].param.grad());
      m[k].push_back(s.exp_avg);
      v[k].push_back(s.exp_avg_sq);
      st[k].push_back(s.step_t);
    }
    // The fused kernel divides gradients by grad_scale: pass 1/clip to multiply them by clip.
    auto inv = clip.to(torch::kFloat32).reciprocal();
    int updated = 0;
    for (int k = 0; k < 2; ++k) {
      if (p[k].empty()) continue;
      at::_foreach_add_(st[k], 1.0);
      at::_fused_adamw_(p[k], g[k], m[k], v[k], {}, st[k], lr, cfg_.beta1, cfg_.beta2,
                        k ? cfg_.weight_decay : 0.0, cfg_.adam_eps, /*amsgrad=*/false, /*maximize=*/false,
                        inv, c10::nullopt);
      updated += static_cast<int>(p[k].size());
    }
    zero_grad();
    return updated;
  }
#endif
  return step(lr, clip.item<double>());
}

int AdamW::step(double lr, double clip) {
  torch::NoGradGuard no_grad;
  // Parameters updated together share a step count (bias correction); group by it.
  std::map<int64_t, std::vector<size_t>> groups;
  for (size_t i = 0; i < params_.size(); ++i) {
    if (!params_[i].param.grad().defined()) continue;
    init_state(i);
    State& s = state_[i];
    s.step += 1;
    if (s.step_t.defined()) s.step_t.add_(1.0);
    groups[s.step].push_back(i);
  }
  int updated = 0;
  const double b1 = cfg_.beta1, b2 = cfg_.beta2;
  for (const auto& [step, idx] : groups) {
    std::vector<torch::Tensor> p, g, m, v, decayed;
    for (size_t i : idx) {
      p.push_back(params_[i].param);
      g.push_back(params_[i].param.grad());
      m.push_back(state_[i].exp_avg);
      v.push_back(state_[i].exp_avg_sq);
      if (decay_[i]) decayed.push_back(params_[i].param);
    }
    if (clip != 1.0) at::_foreach_mul_(g, clip);
    if (cfg_.weight_decay > 0 && !decayed.empty()) at::_foreach_mul_(decayed, 1.0 - lr * cfg_.weight_decay);
    at::_foreach_mul_(m, b1);
    at::_foreach_add_(m, g, 1.0 - b1);
    at::_foreach_mul_(v, b2);
    at::_foreach_addcmul_(v, g, g, 1.0 - b2);
    const double bc1 = 1.0 - std::pow(b1, static_cast<double>(step));
    const double bc2 = 1.0 - std::pow(b2, static_cast<double>(step));
    auto denom = at::_foreach_sqrt(v);
    at::_foreach_div_(denom, std::sqrt(bc2));
    at::_foreach_add_(denom, cfg_.adam_eps);
    at::_foreach_addcdiv_(p, m, denom, -lr / bc1);
    updated += static_cast<int>(idx.size());
  }
  zero_grad();
  return updated;
}

std::vector<std::pair<std::string, torch::Tensor>> AdamW::state_tensors(const std::string& prefix) const {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (size_t i = 0; i < params_.size(); ++i) {
    const State& s = state_[i];
    if (!s.exp_avg.defined() || s.step == 0) continue;
    const std::string base = prefix + params_[i].name;
    out.emplace_back(base + ".exp_avg", s.exp_avg);
    out.emplace_back(base + ".exp_avg_sq", s.exp_avg_sq);
    out.emplace_back(base + ".step", torch::tensor(s.step, torch::kLong));
  }
  return out;
}

void AdamW::load_state(const std::function<torch::Tensor(const std::string&)>& find,
                       const std::string& prefix) {
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) {
    const std::string base = prefix + params_[i].name;
    auto m = find(base + ".exp_avg");
    auto v = find(base + ".exp_avg_sq");
    auto st = find(base + ".step");
    State& s = state_[i];
    if (!m.defined() || !v.defined() || !st.defined()) {
      s = State{};
      if (reserved_) init_state(i);
      continue;
    }
    const auto& p = params_[i].param;
    PCMOE_CHECK_T(ModelError, m.sizes() == p.sizes() && v.sizes() == p.sizes(),
                  "optimizer state '{}' has shape {} but the parameter has {}", base, shape_str(m),
                  shape_str(p));
    s.exp_avg = m.to(p.device(), p.scalar_type()).clone();
    s.exp_avg_sq = v.to(p.device(), p.scalar_type()).clone();
    s.step = st.item<int64_t>();
    s.step_t = torch::Tensor();
  }
}

}  // namespace pcmoe::model
