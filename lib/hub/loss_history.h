// Owns one party's recent losses as the hub sees them in its step reports: the training loss of
// its last kSteps steps and its last kEvals held-out losses, each with the global step it was
// reached at, for the status page's loss chart (/status.json). Non-finite losses are kept out.
// Not thread-safe: a member of PartyRecord, owned by HubState. Header-only.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <vector>

namespace pcmoe::hub {

class LossHistory {
 public:
  static constexpr size_t kSteps = 200;
  static constexpr size_t kEvals = 50;

  // `step`: the global step after the reported step; eval_loss < 0: not evaluated.
  void add(int64_t step, double loss, double eval_loss) {
    if (!(loss < 0)) push(train_, kSteps, step, loss);  // -1: withheld (privacy.hub_report minimal)
    if (!(eval_loss < 0)) push(eval_, kEvals, step, eval_loss);
  }
  // {step, loss} pairs, oldest first.
  std::vector<std::vector<double>> train() const { return {train_.begin(), train_.end()}; }
  std::vector<std::vector<double>> eval() const { return {eval_.begin(), eval_.end()}; }

 private:
  static void push(std::deque<std::vector<double>>& d, size_t cap, int64_t step, double v) {
    if (!std::isfinite(v)) return;
    d.push_back({static_cast<double>(step), v});
    if (d.size() > cap) d.pop_front();
  }
  std::deque<std::vector<double>> train_, eval_;
};

}  // namespace pcmoe::hub
