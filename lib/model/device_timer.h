// Owns timing of device work for attribution (the expert host's timeline): marks recorded on the
// current stream, read once the work has finished. On CUDA the marks are CUDA events with timing
// (device time, not the CPU's launch time); on the CPU, where work is synchronous, the wall clock.
// Marks from one thread; intervals_ms() from any thread after the last mark. Not copyable.
#pragma once

#include <torch/torch.h>

#include <chrono>
#include <memory>
#include <vector>

namespace pcmoe::model {

class DeviceTimer {
 public:
  explicit DeviceTimer(const torch::Device& device);
  ~DeviceTimer();
  DeviceTimer(const DeviceTimer&) = delete;
  DeviceTimer& operator=(const DeviceTimer&) = delete;

  // Records a point on the device's current stream (CPU: now).
  void mark();
  // Milliseconds from mark i to mark i + 1, for every pair; waits for the last mark first.
  std::vector<double> intervals_ms();

 private:
  bool cuda_ = false;
  std::vector<std::chrono::steady_clock::time_point> cpu_;
  struct Events;
  std::unique_ptr<Events> events_;
};

}  // namespace pcmoe::model
