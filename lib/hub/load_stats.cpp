// Global expert load (see load_stats.h).
#include "hub/load_stats.h"

#include <fmt/format.h>

#include <limits>

namespace pcmoe::hub {
namespace {

uint64_t saturating_add(uint64_t a, uint64_t b) {
  return a > std::numeric_limits<uint64_t>::max() - b ? std::numeric_limits<uint64_t>::max() : a + b;
}

}  // namespace

ExpertLoadStats::ExpertLoadStats(size_t n_layers, size_t n_experts, size_t window_steps)
    : n_layers_(n_layers),
      n_experts_(n_experts),
      window_steps_(window_steps == 0 ? 1 : window_steps),
      running_(n_layers, std::vector<uint64_t>(n_experts, 0)),
      window_sum_(running_) {}

std::string ExpertLoadStats::shape_error(const CountMatrix& counts) const {
  if (counts.size() != n_layers_) {
    return fmt::format("expert_counts has {} rows, expected {} (one per MoE layer)", counts.size(),
                       n_layers_);
  }
  for (size_t l = 0; l < counts.size(); ++l) {
    if (counts[l].size() != n_experts_) {
      return fmt::format("expert_counts row {} has {} entries, expected {} (one per expert)", l,
                         counts[l].size(), n_experts_);
    }
  }
  return "";
}

void ExpertLoadStats::add(const CountMatrix& counts) {
  ++steps_;
  for (size_t l = 0; l < n_layers_; ++l) {
    for (size_t e = 0; e < n_experts_; ++e) {
      running_[l][e] = saturating_add(running_[l][e], counts[l][e]);
      window_sum_[l][e] = saturating_add(window_sum_[l][e], counts[l][e]);
    }
  }
  window_.push_back(counts);
  if (window_.size() > window_steps_) {
    const CountMatrix& old = window_.front();
    // A saturated sum cannot be un-added exactly; recompute it from the window in that case.
    bool saturated = false;
    for (size_t l = 0; l < n_layers_; ++l) {
      for (size_t e = 0; e < n_experts_; ++e) {
        if (window_sum_[l][e] == std::numeric_limits<uint64_t>::max()) saturated = true;
        window_sum_[l][e] -= std::min(window_sum_[l][e], old[l][e]);
      }
    }
    window_.pop_front();
    if (saturated) {
      window_sum_.assign(n_layers_, std::vector<uint64_t>(n_experts_, 0));
      for (const auto& step : window_) {
        for (size_t l = 0; l < n_layers_; ++l) {
          for (size_t e = 0; e < n_experts_; ++e)
            window_sum_[l][e] = saturating_add(window_sum_[l][e], step[l][e]);
        }
      }
    }
  }
}

void ExpertLoadStats::restore_running(const CountMatrix& counts, uint64_t steps) {
  running_ = counts;
  steps_ = steps;
  window_.clear();
  window_sum_.assign(n_layers_, std::vector<uint64_t>(n_experts_, 0));
}

ShareMatrix ExpertLoadStats::shares(const CountMatrix& c) const {
  ShareMatrix out(n_layers_,
                  std::vector<double>(n_experts_, n_experts_ ? 1.0 / static_cast<double>(n_experts_) : 0));
  for (size_t l = 0; l < n_layers_; ++l) {
    long double total = 0;
    for (uint64_t x : c[l]) total += static_cast<long double>(x);
    if (total <= 0) continue;
    for (size_t e = 0; e < n_experts_; ++e) {
      out[l][e] = static_cast<double>(static_cast<long double>(c[l][e]) / total);
    }
  }
  return out;
}

}  // namespace pcmoe::hub
