// MoE dispatch and combine (see moe.h).
#include "model/moe.h"

#include "model/layers.h"

namespace pcmoe::model {

torch::Tensor moe_combine(const torch::Tensor& x, const Routing& r, int layer, int n_experts,
                          ExpertDispatcher& experts, LayerStats* stats) {
  const int64_t n = x.size(0);
  const int64_t k = r.expert_idx.size(1);
  const int m = n_experts;
  // Flatten the N*k assignments, drop those over capacity, sort by expert (stable, so rows of one
  // expert stay in token order; a remote dispatcher shuffles them before they leave the party).
  auto flat_expert = r.expert_idx.reshape({-1});
  auto flat_gate = r.gates.reshape({-1});
  auto flat_token = torch::arange(n, flat_expert.options()).unsqueeze(1).expand({n, k}).reshape({-1});
  if (r.keep.defined()) {
    auto keep = r.keep.reshape({-1});
    flat_expert = flat_expert.masked_select(keep);
    flat_gate = flat_gate.masked_select(keep);
    flat_token = flat_token.masked_select(keep);
  }
  auto order = std::get<1>(torch::sort(flat_expert, /*stable=*/true, /*dim=*/0, /*descending=*/false));
  auto expert_sorted = flat_expert.index_select(0, order);
  auto token_sorted = flat_token.index_select(0, order);
  auto gate_sorted = flat_gate.index_select(0, order);

  // One device->host transfer for both the split sizes and the statistics.
  auto summary = torch::cat({torch::bincount(flat_expert, {}, m).to(torch::kFloat64),
                             r.probs.detach().mean(0).to(torch::kFloat64)})
                     .to(torch::kCPU);
  const double* s = summary.data_ptr<double>();
  std::vector<int64_t> counts(static_cast<size_t>(m));
  for (int e = 0; e < m; ++e) counts[static_cast<size_t>(e)] = static_cast<int64_t>(s[e]);
  if (stats) {
    stats->layer = layer;
    stats->counts = counts;
    stats->gate_mean.assign(s + m, s + 2 * m);
  }

  auto x_sorted = x.index_select(0, token_sorted);
  experts.note_rows(layer, token_sorted);
  auto y_sorted = experts.dispatch(layer, x_sorted, expert_sorted, counts);
  auto weighted = upcast(y_sorted) * gate_sorted.unsqueeze(1).to(upcast(y_sorted).scalar_type());
  auto out = torch::zeros({n, x.size(1)}, weighted.options()).index_add(0, token_sorted, weighted);
  return out.to(x.scalar_type());
}

}  // namespace pcmoe::model
