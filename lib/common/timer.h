// Owns the small clock helpers of the trainers and the party: milliseconds between steady-clock
// points, and ScopedTimer, which adds the wall time of a scope to a counter (the dispatcher's
// wait and serialisation totals, a step's phases). Header-only; not thread-safe (one counter,
// one thread).
#pragma once

#include <chrono>

namespace pcmoe {

using SteadyClock = std::chrono::steady_clock;

// Milliseconds from `a` to `b` (negative if b is earlier).
inline double ms_between(SteadyClock::time_point a, SteadyClock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

inline double ms_since(SteadyClock::time_point t) { return ms_between(t, SteadyClock::now()); }

// Adds the time from construction to destruction (or to stop()) to `total_ms`, once.
class ScopedTimer {
 public:
  explicit ScopedTimer(double& total_ms) : total_ms_(&total_ms), start_(SteadyClock::now()) {}
  ~ScopedTimer() { stop(); }
  ScopedTimer(const ScopedTimer&) = delete;
  ScopedTimer& operator=(const ScopedTimer&) = delete;
  void stop() {
    if (total_ms_ == nullptr) return;
    *total_ms_ += ms_since(start_);
    total_ms_ = nullptr;
  }

 private:
  double* total_ms_;
  SteadyClock::time_point start_;
};

}  // namespace pcmoe
