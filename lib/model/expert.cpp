// Experts, the expert shard and grouped expert computation (see expert.h).
#include "model/expert.h"

#include <fmt/format.h>

#include <cmath>
#include <cstdio>

#include "common/error.h"
#include "common/hash.h"
#include "model/compat.h"
#include "model/layers.h"

namespace pcmoe::model {

std::string expert_name(int layer, int expert) { return fmt::format("l{}.e{}", layer, expert); }

bool parse_expert_param(const std::string& name, int& layer, int& expert, std::string& param) {
  int consumed = 0;
  if (std::sscanf(name.c_str(), "l%d.e%d.%n", &layer, &expert, &consumed) != 2 || consumed == 0) return false;
  if (layer < 0 || expert < 0) return false;
  param = name.substr(static_cast<size_t>(consumed));
  return param == "w1" || param == "w2" || param == "w3";
}

ExpertImpl::ExpertImpl(const ModelConfig& cfg, uint64_t expert_seed, int layer, int expert)
    : swiglu_(cfg.activation == "swiglu") {
  at::Generator gen = make_cpu_generator(
      mix_seed(mix_seed(expert_seed, static_cast<uint64_t>(layer)), static_cast<uint64_t>(expert)));
  const double out_std = cfg.init_std / std::sqrt(2.0 * cfg.n_layers);
  w1_ = register_parameter("w1", normal_init({cfg.d_ff, cfg.d_model}, cfg.init_std, gen));
  if (swiglu_) w3_ = register_parameter("w3", normal_init({cfg.d_ff, cfg.d_model}, cfg.init_std, gen));
  w2_ = register_parameter("w2", normal_init({cfg.d_model, cfg.d_ff}, out_std, gen));
}

torch::Tensor ExpertImpl::forward(const torch::Tensor& x) { return ffn_forward(x, w1_, w3_, w2_, swiglu_); }

ExpertShard::ExpertShard(const ModelConfig& cfg, uint64_t expert_seed, const HostPredicate& hosted)
    : n_experts_(cfg.n_experts) {
  // Module names may not contain dots: a container per layer ("l1") holding "e5" gives the
  // parameter names "l1.e5.w1".
  for (int layer : cfg.moe_layer_indices()) {
    std::shared_ptr<torch::nn::Module> container;
    for (int e = 0; e < cfg.n_experts; ++e) {
      if (!hosted(layer, e)) continue;
      if (!container)
        container = register_module("l" + std::to_string(layer), std::make_shared<torch::nn::Module>());
      experts_.emplace(
          std::make_pair(layer, e),
          container->register_module("e" + std::to_string(e), Expert(cfg, expert_seed, layer, e)));
    }
  }
}

Expert& ExpertShard::get(int layer, int expert) {
  auto it = experts_.find({layer, expert});
  if (it == experts_.end()) {
    throw ModelError(fmt::format("expert {} is not hosted here", expert_name(layer, expert)));
  }
  return it->second;
}

torch::Tensor ExpertShard::run_grouped(int layer, const torch::Tensor& x,
                                       const std::vector<int64_t>& counts) {
  if (!grouped_mm_available(x.device()) ||
      !(cuda_autocast_enabled() || x.scalar_type() == torch::kBFloat16)) {
    return {};
  }
  std::vector<torch::Tensor> w1, w3, w2;
  std::vector<int32_t> ends;
  int64_t acc = 0;
  for (int e = 0; e < n_experts_; ++e) {
    const int64_t n = counts[static_cast<size_t>(e)];
    if (n == 0) continue;
    Expert& ex = get(layer, e);
    acc += n;
    ends.push_back(static_cast<int32_t>(acc));
    w1.push_back(ex->w1());
    w2.push_back(ex->w2());
    if (ex->swiglu()) w3.push_back(ex->w3());
  }
  if (ends.empty() || x.size(1) % 8 != 0 || w1[0].size(0) % 8 != 0) return {};
  try {
    auto offs = torch::tensor(ends, torch::kInt32).to(x.device(), /*non_blocking=*/true);
    auto xb = x.to(torch::kBFloat16);
    auto h1 = grouped_linear(xb, torch::stack(w1).to(torch::kBFloat16), offs);
    torch::Tensor a;
    if (!w3.empty()) {
      auto h3 = grouped_linear(xb, torch::stack(w3).to(torch::kBFloat16), offs);
      a = torch::silu(h1) * h3;
    } else {
      a = torch::gelu(h1);
    }
    return grouped_linear(a, torch::stack(w2).to(torch::kBFloat16), offs);
  } catch (const c10::Error& e) {
    disable_grouped_mm(e.what_without_backtrace());
    return {};
  }
}

torch::Tensor ExpertShard::run_sorted(int layer, const torch::Tensor& x_sorted,
                                      const std::vector<int64_t>& counts) {
  PCMOE_CHECK_T(ModelError, static_cast<int>(counts.size()) == n_experts_,
                "counts has {} entries, expected {}", counts.size(), n_experts_);
  if (x_sorted.is_cuda()) {
    auto y = run_grouped(layer, x_sorted, counts);
    if (y.defined()) return y;
  }
  std::vector<torch::Tensor> outs;
  int64_t offset = 0;
  for (int e = 0; e < n_experts_; ++e) {
    const int64_t n = counts[static_cast<size_t>(e)];
    if (n == 0) continue;
    outs.push_back(get(layer, e)->forward(x_sorted.narrow(0, offset, n)));
    offset += n;
  }
  PCMOE_CHECK_T(ModelError, offset == x_sorted.size(0), "counts sum to {}, but there are {} rows", offset,
                x_sorted.size(0));
  if (outs.empty()) return torch::zeros_like(x_sorted);
  return outs.size() == 1 ? outs[0] : torch::cat(outs, 0);
}

torch::Tensor ExpertShard::run(int layer, const torch::Tensor& x, const torch::Tensor& expert_ids) {
  const int64_t rows = x.size(0);
  if (rows == 0) return torch::zeros_like(x);
  // The ids are few and usually on the CPU already (they come off the wire): the range check, the
  // counts and the sort happen there, and one index upload replaces the device syncs.
  auto ids = expert_ids.to(torch::kCPU, torch::kLong).contiguous();
  PCMOE_CHECK_T(ModelError, ids.numel() == rows, "{} expert ids for {} rows", ids.numel(), rows);
  const int64_t* id = ids.data_ptr<int64_t>();
  std::vector<int64_t> counts(static_cast<size_t>(n_experts_), 0);
  for (int64_t r = 0; r < rows; ++r) {
    PCMOE_CHECK_T(ModelError, id[r] >= 0 && id[r] < n_experts_, "expert ids must be in [0, {}), found {}",
                  n_experts_, id[r]);
    counts[static_cast<size_t>(id[r])]++;
  }
  // Stable counting sort: order[j] = row at sorted position j; inverse[row] = its position.
  std::vector<int64_t> start(static_cast<size_t>(n_experts_), 0);
  for (int e = 1; e < n_experts_; ++e)
    start[static_cast<size_t>(e)] = start[static_cast<size_t>(e - 1)] + counts[static_cast<size_t>(e - 1)];
  // Pinned for a device: the upload is queued without waiting for the stream (a copy from pageable
  // memory would synchronise it: every request's earlier device work, each time).
  auto perm = torch::empty({2, rows}, torch::TensorOptions(torch::kLong).pinned_memory(x.is_cuda()));
  int64_t* order = perm.data_ptr<int64_t>();
  int64_t* inverse = order + rows;
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t pos = start[static_cast<size_t>(id[r])]++;
    order[pos] = r;
    inverse[r] = pos;
  }
  auto dev = perm.to(x.device(), /*non_blocking=*/true);
  auto y_sorted = run_sorted(layer, x.index_select(0, dev[0]), counts);
  return y_sorted.index_select(0, dev[1]);
}

std::vector<std::pair<std::string, torch::Tensor>> ExpertShard::named_expert_params() const {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& item : named_parameters(/*recurse=*/true)) out.emplace_back(item.key(), item.value());
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  return out;
}

int64_t ExpertShard::parameter_count() const {
  int64_t n = 0;
  for (const auto& p : parameters()) n += p.numel();
  return n;
}

}  // namespace pcmoe::model
