// Device-side timing marks (see device_timer.h).
#include "model/device_timer.h"

#include "common/error.h"

#if defined(PCMOE_WITH_CUDA) && __has_include(<c10/cuda/CUDAStream.h>)
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>
#define PCMOE_CUDA_EVENTS 1
#else
#define PCMOE_CUDA_EVENTS 0
#endif

namespace pcmoe::model {

#if PCMOE_CUDA_EVENTS
struct DeviceTimer::Events {
  int device = 0;
  std::vector<cudaEvent_t> marks;
  ~Events() {
    for (auto e : marks) cudaEventDestroy(e);
  }
};
#else
struct DeviceTimer::Events {};
#endif

DeviceTimer::DeviceTimer(const torch::Device& device)
    : cuda_(device.is_cuda()), events_(std::make_unique<Events>()) {
#if PCMOE_CUDA_EVENTS
  events_->device = device.has_index() ? device.index() : 0;
#else
  PCMOE_CHECK_T(ModelError, !cuda_, "this build has no CUDA");
#endif
}

DeviceTimer::~DeviceTimer() = default;

void DeviceTimer::mark() {
#if PCMOE_CUDA_EVENTS
  if (cuda_) {
    cudaEvent_t e = nullptr;
    if (cudaEventCreate(&e) != cudaSuccess) throw ModelError("cudaEventCreate failed");
    cudaEventRecord(e,
                    c10::cuda::getCurrentCUDAStream(static_cast<c10::DeviceIndex>(events_->device)).stream());
    events_->marks.push_back(e);
    return;
  }
#endif
  cpu_.push_back(std::chrono::steady_clock::now());
}

std::vector<double> DeviceTimer::intervals_ms() {
  std::vector<double> out;
#if PCMOE_CUDA_EVENTS
  if (cuda_) {
    auto& m = events_->marks;
    if (m.empty()) return out;
    // The marks' device (this may be another thread than the one that recorded them).
    c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(events_->device));
    cudaEventSynchronize(m.back());
    for (size_t i = 1; i < m.size(); ++i) {
      float ms = 0;
      cudaEventElapsedTime(&ms, m[i - 1], m[i]);
      out.push_back(ms);
    }
    return out;
  }
#endif
  for (size_t i = 1; i < cpu_.size(); ++i) {
    out.push_back(std::chrono::duration<double, std::milli>(cpu_[i] - cpu_[i - 1]).count());
  }
  return out;
}

}  // namespace pcmoe::model
