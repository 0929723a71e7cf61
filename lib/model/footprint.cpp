// Memory footprint model (see footprint.h). Per token of the batch (N = batch * seq_len), with
// e = 2 bytes under bf16 autocast (matmul outputs) and 4 in fp32, autograd keeps:
//   per block:    norms (fp32 input, normalised output, cast to e): 2 * (8d + e*d)
//                 attention: qkv 3d*e (v is a view of it), rotated q and k 2d*e, SDPA output d*e,
//                 re-laid-out output for wo d*e, residual 4d            -> 4d*... see below
//   per MoE layer: router logits/probs/one-hot ~5 * 4m, k rows: input cast d*e, h1 and h3 f*e each,
//                 silu(h1) f*e, product f*e, output upcast 4d, plus the fp32 combine buffer 4d
//   head:         logits V*e, fp32 log-softmax 4V, final norm 8d + e*d.
// The backward transient is the activation gradient of one MoE layer (k rows of 4f + 2d, fp32).
// A host keeps, per row it serves for backward, the fp32 input leaf (4d) and the saved tensors of
// the expert (e*(d + 4f) + e*d output); in recompute mode only the input rows (wire bytes * d).
#include "model/footprint.h"

#include <fmt/format.h>

#include <algorithm>

#include "common/error.h"

namespace pcmoe::model {

// Sequential turns: a party never trains and keeps other parties' rows at the same time, so the
// peak is the state plus the larger of its own step and what it keeps as a host. Concurrent
// rounds: its own step and the rows of every other requester at once.
uint64_t Footprint::total() const {
  const uint64_t own = std::max(activations + backward_peak, gradients + last_layer_activations);
  const uint64_t state = backbone_state + expert_state + weight_casts;
  if (concurrent_requesters > 0)
    return state + own + host_gradients + static_cast<uint64_t>(concurrent_requesters) * remote_stash;
  return state + std::max(own, host_gradients + remote_stash);
}

uint64_t Footprint::minimum() const {
  const uint64_t own = std::max(activations + backward_peak, gradients + last_layer_activations);
  const uint64_t state = backbone_state + expert_state + weight_casts;
  if (concurrent_requesters > 0)
    return state + own + host_gradients + static_cast<uint64_t>(concurrent_requesters) * remote_stash_min;
  return state + std::max(own, host_gradients + remote_stash_min);
}

std::string Footprint::table() const {
  auto mib = [](uint64_t b) { return static_cast<double>(b) / (1024.0 * 1024.0); };
  std::string s;
  s += fmt::format("  backbone weights+AdamW         {:>10.1f} MiB\n", mib(backbone_state));
  s += fmt::format("  experts  weights+AdamW         {:>10.1f} MiB\n", mib(expert_state));
  s += fmt::format("  gradients (built in backward)  {:>10.1f} MiB\n", mib(gradients));
  s += fmt::format("  bf16 weight copies (autocast)  {:>10.1f} MiB\n", mib(weight_casts));
  s += fmt::format("  activations (own batch)        {:>10.1f} MiB\n", mib(activations));
  s += fmt::format("  backward transient             {:>10.1f} MiB\n", mib(backward_peak));
  s += fmt::format("  remote rows kept for backward  {:>10.1f} MiB (worst case; {:.1f} MiB if recomputed)\n",
                   mib(remote_stash), mib(remote_stash_min));
  if (concurrent_requesters > 0) {
    s += fmt::format(
        "  concurrent rounds: the own step and {} requesters' rows at once ({:.1f} MiB of rows)\n",
        concurrent_requesters, mib(remote_stash * static_cast<uint64_t>(concurrent_requesters)));
  }
  s += fmt::format("  total                          {:>10.1f} MiB (minimum {:.1f} MiB)", mib(total()),
                   mib(minimum()));
  return s;
}

double minimum_state_bytes(const ModelConfig& m) {
  const double d = m.d_model, ff = m.d_ff, V = m.vocab_size;
  const double experts_layers = static_cast<double>(m.moe_layer_indices().size());
  const double params = V * d + m.n_layers * 4.0 * d * d + experts_layers * 2.0 * d * ff;
  return 16.0 * params;
}

void check_model_fits(const ModelConfig& m, uint64_t device_bytes, const std::string& device) {
  const double need = minimum_state_bytes(m);
  if (device_bytes == 0 || need <= static_cast<double>(device_bytes)) return;
  auto gib = [](double b) { return b / (1024.0 * 1024.0 * 1024.0); };
  throw ConfigError(fmt::format(
      "the model does not fit this machine: its weights, gradients and optimizer state alone need at least "
      "{:.1f} GiB (model.d_model {}, model.n_layers {}, model.vocab_size {}, model.d_ff {}), but {} has "
      "{:.1f} GiB; use a smaller preset",
      gib(need), m.d_model, m.n_layers, m.vocab_size, m.d_ff, device,
      gib(static_cast<double>(device_bytes))));
}

Footprint estimate_footprint(const ModelConfig& m, const TrainConfig& t, const FootprintInput& in) {
  Footprint f;
  const double e = in.bf16 ? 2.0 : 4.0;
  const double d = m.d_model, ff = m.d_ff, k = m.top_k, V = m.vocab_size, ex = m.n_experts;
  const double n_tokens = static_cast<double>(t.batch_size) * m.seq_len;
  const double layers = m.n_layers;
  const double moe_layers = static_cast<double>(m.moe_layer_indices().size());
  const double dense_layers = layers - moe_layers;

  f.backbone_state = static_cast<uint64_t>(12.0 * static_cast<double>(in.backbone_params));
  f.expert_state = static_cast<uint64_t>(12.0 * static_cast<double>(in.hosted_expert_params));
  f.gradients =
      static_cast<uint64_t>(4.0 * static_cast<double>(in.backbone_params + in.hosted_expert_params));
  f.host_gradients = static_cast<uint64_t>(4.0 * static_cast<double>(in.hosted_expert_params));
  if (in.bf16) {
    f.weight_casts =
        static_cast<uint64_t>(2.0 * static_cast<double>(in.backbone_params + in.hosted_expert_params));
  }

  const double norm = 8 * d + e * d;
  const double attention = 3 * d * e + 2 * d * e + d * e + d * e;
  const double per_block = 2 * norm + attention;
  const double moe = 20 * ex + k * (e * d + 4 * e * ff + 4 * d);
  const double dense_ffn = e * d + 4 * e * m.d_ff_dense;
  const double head = 4 * V + norm;
  const double per_token = layers * per_block + moe_layers * moe + dense_layers * dense_ffn + head;
  f.activations = static_cast<uint64_t>(n_tokens * per_token);
  f.last_layer_activations =
      static_cast<uint64_t>(n_tokens * (per_block + (moe_layers > 0 ? moe : dense_ffn)));
  // Backward transient: the activation gradients of one MoE layer, or the head's, or the grouped
  // GEMM's fp32 + bf16 copies of one layer's stacked expert weights and their gradients.
  const double expert_layer_params =
      moe_layers > 0 ? static_cast<double>(in.hosted_expert_params) / moe_layers : 0;
  f.backward_peak =
      static_cast<uint64_t>(std::max({n_tokens * k * (4 * 4 * ff + 2 * 4 * d), n_tokens * 2 * 4 * V,
                                      (in.bf16 ? 8.0 : 0.0) * expert_layer_params}));

  if (in.n_parties > 1 && in.hosted_experts_per_layer > 0) {
    // Worst case: every row of a requester's batch routed to experts hosted here, in every MoE
    // layer, at most k of them (a token picks k distinct experts).
    const double k_here = std::min<double>(k, in.hosted_experts_per_layer);
    const double rows = n_tokens * k_here * moe_layers;
    f.remote_stash = static_cast<uint64_t>(rows * (4 * d + e * (d + 4 * ff) + e * d));
    f.remote_stash_min = static_cast<uint64_t>(rows * in.wire_bytes * d);
    if (in.concurrent) f.concurrent_requesters = in.n_parties - 1;
  }
  return f;
}

}  // namespace pcmoe::model
