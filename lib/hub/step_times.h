// Owns one party's recent step times as the hub sees them in its step reports (StepReport.step_ms):
// the last one and the mean of the last kWindow, for hub.stats, the status page and /metrics
// ("which party is slow"). Reports with a non-finite or negative step_ms are ignored.
// Not thread-safe: a member of PartyRecord, owned by HubState. Header-only.
#pragma once

#include <array>
#include <cmath>
#include <cstddef>

namespace pcmoe::hub {

class StepTimes {
 public:
  static constexpr size_t kWindow = 20;

  void add(double step_ms) {
    if (!std::isfinite(step_ms) || step_ms < 0) return;
    last_ms_ = step_ms;
    ring_[next_] = step_ms;
    next_ = (next_ + 1) % kWindow;
    if (fill_ < kWindow) ++fill_;
  }
  bool empty() const { return fill_ == 0; }
  size_t count() const { return fill_; }
  double last_ms() const { return fill_ ? last_ms_ : -1; }  // -1: no report yet
  double mean_ms() const {                                  // over the last kWindow; -1: none
    if (fill_ == 0) return -1;
    double sum = 0;
    for (size_t i = 0; i < fill_; ++i) sum += ring_[i];
    return sum / static_cast<double>(fill_);
  }

 private:
  std::array<double, kWindow> ring_{};
  size_t next_ = 0, fill_ = 0;
  double last_ms_ = -1;
};

}  // namespace pcmoe::hub
