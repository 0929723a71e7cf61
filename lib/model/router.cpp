// Top-k routing and router losses (see router.h).
#include "model/router.h"

#include <cmath>
#include <limits>

#include "model/layers.h"

namespace pcmoe::model {

int64_t expert_capacity(const ModelConfig& cfg, int64_t tokens) {
  if (cfg.router.capacity_factor <= 0) return -1;
  return static_cast<int64_t>(
      std::ceil(cfg.router.capacity_factor * static_cast<double>(tokens) * cfg.top_k / cfg.n_experts));
}

Routing route(const torch::Tensor& logits_in, const ModelConfig& cfg, const torch::Tensor& available,
              const torch::Tensor& bias) {
  Routing r;
  const int64_t t = logits_in.size(0);
  const int64_t m = logits_in.size(1);
  const int k = cfg.top_k;
  auto logits = upcast(logits_in);
  r.z_loss = torch::logsumexp(logits, -1).pow(2).mean();
  if (available.defined()) {
    logits =
        logits.masked_fill(available.logical_not().unsqueeze(0), -std::numeric_limits<float>::infinity());
  }
  r.probs = torch::softmax(logits, -1);
  torch::Tensor scores = r.probs;
  if (bias.defined()) scores = scores + bias.unsqueeze(0);
  if (available.defined() && bias.defined()) {
    scores =
        scores.masked_fill(available.logical_not().unsqueeze(0), -std::numeric_limits<float>::infinity());
  }
  r.expert_idx = std::get<1>(torch::topk(scores.detach(), k, -1, /*largest=*/true, /*sorted=*/true));
  r.gates = r.probs.gather(1, r.expert_idx);
  if (cfg.router.normalize_topk) r.gates = r.gates / r.gates.sum(-1, /*keepdim=*/true).clamp_min(1e-9);

  // Load-balancing loss (Switch/GShard): f_e = share of the T*k assignments going to e (no
  // gradient), P_e = mean router probability of e (gradient flows through it).
  auto one_hot = torch::zeros({t, m}, r.probs.options()).scatter_(1, r.expert_idx, 1.0);
  auto f = one_hot.sum(0) / static_cast<double>(t * k);
  auto p = r.probs.mean(0);
  r.aux_loss = static_cast<double>(m) * (f.detach() * p).sum();

  const int64_t cap = expert_capacity(cfg, t);
  if (cap >= 0) {
    // Position of each assignment within its expert's queue, in token order (slot-major: all
    // first choices before second choices, as in GShard), keep those below capacity.
    auto flat = r.expert_idx.t().reshape({-1});  // [k*T], slot-major
    auto oh = torch::zeros({k * t, m}, r.probs.options()).scatter_(1, flat.unsqueeze(1), 1.0);
    auto pos = (oh.cumsum(0) - 1.0).gather(1, flat.unsqueeze(1)).squeeze(1);
    r.keep = (pos < static_cast<double>(cap)).view({k, t}).t().contiguous();
    r.gates = r.gates * r.keep.to(r.gates.scalar_type());
  }
  return r;
}

}  // namespace pcmoe::model
