// Owns the global router statistics: per MoE layer, per expert, the tokens routed there by every
// party's router, as running totals since the start and over a sliding window of the last
// `window_steps` steps; and their shares (each layer sums to 1; a layer with no tokens yet is
// uniform). Parties use the shares for selection-only load balancing (model.router.
// balance_bias_rate): bias_e += rate * sign(1/m - share_e).
// Not thread-safe: owned by HubState. Counts saturate instead of overflowing.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

namespace pcmoe::hub {

using CountMatrix = std::vector<std::vector<uint64_t>>;
using ShareMatrix = std::vector<std::vector<double>>;

class ExpertLoadStats {
 public:
  ExpertLoadStats(size_t n_layers, size_t n_experts, size_t window_steps);

  // "" if `counts` is n_layers x n_experts, else what is wrong (for a bad_shape reply).
  std::string shape_error(const CountMatrix& counts) const;
  // Adds one step's counts (shape already checked).
  void add(const CountMatrix& counts);

  // A restarted hub: running totals over `steps` steps as saved (shape already checked); the
  // window starts empty.
  void restore_running(const CountMatrix& counts, uint64_t steps);

  ShareMatrix running_shares() const { return shares(running_); }
  ShareMatrix window_shares() const { return shares(window_sum_); }
  const CountMatrix& running_counts() const { return running_; }
  const CountMatrix& window_counts() const { return window_sum_; }
  size_t window_steps() const { return window_steps_; }
  size_t window_fill() const { return window_.size(); }  // steps currently in the window
  uint64_t steps() const { return steps_; }

 private:
  ShareMatrix shares(const CountMatrix& c) const;

  size_t n_layers_, n_experts_, window_steps_;
  CountMatrix running_;
  CountMatrix window_sum_;
  std::deque<CountMatrix> window_;
  uint64_t steps_ = 0;
};

}  // namespace pcmoe::hub
