// libtorch version differences (see compat.h).
#include "model/compat.h"

#include <ATen/autocast_mode.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>

#include "common/error.h"
#include "common/log.h"

#include <atomic>
#include <cstdlib>

#if __has_include(<c10/cuda/CUDACachingAllocator.h>) && defined(PCMOE_WITH_CUDA)
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <cuda_runtime_api.h>
#define PCMOE_CUDA_ALLOC 1
#else
#define PCMOE_CUDA_ALLOC 0
#endif

namespace pcmoe::model {

torch::Tensor causal_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v) {
#if PCMOE_TORCH_HAS_SDPA
  return at::scaled_dot_product_attention(q, k, v, /*attn_mask=*/{}, /*dropout_p=*/0.0, /*is_causal=*/true);
#else
  const int64_t t = q.size(-2);
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  auto scores = torch::matmul(q, k.transpose(-2, -1)) * scale;
  auto mask = torch::ones({t, t}, torch::TensorOptions().dtype(torch::kBool).device(q.device())).triu(1);
  scores = scores.masked_fill(mask, -std::numeric_limits<float>::infinity());
  return torch::matmul(torch::softmax(scores, -1), v);
#endif
}

AutocastGuard::AutocastGuard(bool enabled, const torch::Device& device) {
  if (!enabled || !device.is_cuda()) return;
  active_ = true;
#if PCMOE_TORCH_NEW_AUTOCAST
  prev_ = at::autocast::is_autocast_enabled(at::kCUDA);
  at::autocast::set_autocast_dtype(at::kCUDA, at::kBFloat16);
  at::autocast::set_autocast_enabled(at::kCUDA, true);
#else
  prev_ = at::autocast::is_enabled();
  at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
  at::autocast::set_enabled(true);
#endif
}

AutocastGuard::~AutocastGuard() {
  if (!active_) return;
#if PCMOE_TORCH_NEW_AUTOCAST
  at::autocast::set_autocast_enabled(at::kCUDA, prev_);
#else
  at::autocast::set_enabled(prev_);
#endif
  if (!prev_) at::autocast::clear_cache();
}

NoAutocastGuard::NoAutocastGuard(const torch::Device& device) {
  if (!device.is_cuda()) return;
  cuda_ = true;
#if PCMOE_TORCH_NEW_AUTOCAST
  prev_ = at::autocast::is_autocast_enabled(at::kCUDA);
  at::autocast::set_autocast_enabled(at::kCUDA, false);
#else
  prev_ = at::autocast::is_enabled();
  at::autocast::set_enabled(false);
#endif
}

NoAutocastGuard::~NoAutocastGuard() {
  if (!cuda_) return;
#if PCMOE_TORCH_NEW_AUTOCAST
  at::autocast::set_autocast_enabled(at::kCUDA, prev_);
#else
  at::autocast::set_enabled(prev_);
#endif
}

bool cuda_autocast_enabled() {
#if PCMOE_TORCH_NEW_AUTOCAST
  return at::autocast::is_autocast_enabled(at::kCUDA);
#else
  return at::autocast::is_enabled();
#endif
}

namespace {
std::atomic<bool> g_grouped_disabled{false};
}  // namespace

bool grouped_mm_available(const torch::Device& device) {
#if PCMOE_TORCH_HAS_GROUPED_MM
  if (!device.is_cuda() || g_grouped_disabled.load()) return false;
  static const bool env_off = [] {
    const char* v = std::getenv("PCMOE_GROUPED_MM");
    return v && std::string(v) == "0";
  }();
  return !env_off;
#else
  (void)device;
  return false;
#endif
}

void disable_grouped_mm(const std::string& why) {
  if (!g_grouped_disabled.exchange(true)) {
    PCMOE_WARN("model.grouped_mm_disabled").kv("reason", why);
  }
}

torch::Tensor grouped_linear(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& offs) {
#if PCMOE_TORCH_HAS_GROUPED_MM
  return at::_grouped_mm(x, w.transpose(1, 2), offs);
#else
  (void)w;
  (void)offs;
  throw ModelError("grouped GEMM needs libtorch >= 2.8");
  return x;
#endif
}

at::Generator make_cpu_generator(uint64_t seed) { return at::detail::createCPUGenerator(seed); }

torch::Device parse_device(const std::string& name) {
  torch::Device dev(torch::kCPU);
  try {
    dev = torch::Device(name);
  } catch (const c10::Error&) {
    throw ConfigError("unknown device '" + name + "' (expected cpu, cuda or cuda:N)");
  }
  if (dev.is_cuda()) {
    if (!torch::cuda::is_available()) {
      throw ConfigError("device '" + name +
                        "' asked for, but this libtorch build or machine has no CUDA (use device: cpu)");
    }
    if (dev.has_index() && dev.index() >= static_cast<int>(torch::cuda::device_count())) {
      throw ConfigError("device '" + name + "' does not exist: this machine has " +
                        std::to_string(torch::cuda::device_count()) + " CUDA device(s)");
    }
    if (!dev.has_index()) dev = torch::Device(torch::kCUDA, 0);
  } else if (!dev.is_cpu()) {
    throw ConfigError("unsupported device '" + name + "' (expected cpu, cuda or cuda:N)");
  }
  return dev;
}

namespace {
uint64_t read_vm_hwm_bytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) {
      return std::stoull(line.substr(6)) * 1024;  // kB
    }
  }
  return 0;
}
}  // namespace

PeakMemory peak_memory(const torch::Device& device) {
  PeakMemory p;
#if PCMOE_CUDA_ALLOC
  if (device.is_cuda()) {
    auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device.index());
    // Index 0 is StatType::AGGREGATE (the enum moved namespaces between libtorch versions).
    p.allocated_bytes = static_cast<uint64_t>(stats.allocated_bytes[0].peak);
    p.reserved_bytes = static_cast<uint64_t>(stats.reserved_bytes[0].peak);
    return p;
  }
#endif
  (void)device;
  p.allocated_bytes = p.reserved_bytes = read_vm_hwm_bytes();
  return p;
}

void reset_peak_memory(const torch::Device& device) {
#if PCMOE_CUDA_ALLOC
  if (device.is_cuda()) c10::cuda::CUDACachingAllocator::resetPeakStats(device.index());
#else
  (void)device;
#endif
}

void empty_cache(const torch::Device& device) {
#if PCMOE_CUDA_ALLOC
  if (device.is_cuda()) c10::cuda::CUDACachingAllocator::emptyCache();
#else
  (void)device;
#endif
}

void set_memory_limit(const torch::Device& device, uint64_t bytes) {
#if PCMOE_CUDA_ALLOC
  if (device.is_cuda() && bytes > 0) {
    uint64_t total = device_total_memory(device);
    double fraction = std::min(1.0, static_cast<double>(bytes) / static_cast<double>(total));
    c10::cuda::CUDACachingAllocator::setMemoryFraction(fraction, device.index());
  }
#else
  (void)device;
  (void)bytes;
#endif
}

uint64_t device_total_memory(const torch::Device& device) {
#if PCMOE_CUDA_ALLOC
  if (device.is_cuda()) {
    size_t free_b = 0, total_b = 0;
    c10::cuda::CUDAGuard guard(device.index());
    cudaMemGetInfo(&free_b, &total_b);
    return total_b;
  }
#endif
  (void)device;
  return 0;
}

// OpenBLAS (Debian's libopenblas0-pthread behind libtorch) runs its own thread pool inside each of
// libtorch's OpenMP threads: with 2 of each on 2 cores a training step took 727 ms instead of
// 251 ms (measured here). libtorch parallelises, BLAS runs single-threaded inside; OpenMP threads
// sleep instead of spinning when idle (set before the OpenMP runtime starts).
extern "C" void openblas_set_num_threads(int) __attribute__((weak));

namespace {

// Bench only: PCMOE_CUDA_SYNC=spin|yield|blocking sets how this process's threads wait for device 0
// (cudaSetDeviceFlags, before its context exists; CUDA's default "auto" spins when the machine
// has more cores than active contexts). Unset: CUDA's default.
void apply_cuda_sync_env() {
  const char* v = std::getenv("PCMOE_CUDA_SYNC");
  if (v == nullptr) return;
  const std::string mode(v);
#if PCMOE_CUDA_ALLOC
  unsigned flag = 0;
  if (mode == "spin") flag = cudaDeviceScheduleSpin;
  if (mode == "yield") flag = cudaDeviceScheduleYield;
  if (mode == "blocking") flag = cudaDeviceScheduleBlockingSync;
  const cudaError_t e = flag == 0 ? cudaErrorInvalidValue : cudaSetDeviceFlags(flag);
  PCMOE_LOG(e == cudaSuccess ? log::Level::info : log::Level::warn, "model.cuda_sync")
      .kv("PCMOE_CUDA_SYNC", mode)
      .kv("applied", e == cudaSuccess ? std::string("yes") : std::string(cudaGetErrorString(e)));
#else
  PCMOE_WARN("model.cuda_sync").kv("PCMOE_CUDA_SYNC", mode).kv("applied", "no CUDA in this build");
#endif
}

}  // namespace

void set_threads(int n) {
  static std::once_flag cuda_sync;
  std::call_once(cuda_sync, apply_cuda_sync_env);
  if (n <= 0) n = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  ::setenv("OMP_WAIT_POLICY", "PASSIVE", /*overwrite=*/0);
  if (openblas_set_num_threads) openblas_set_num_threads(1);
  torch::set_num_threads(n);
}

torch::Tensor upload_indices(const std::vector<int64_t>& v, const torch::Device& device) {
  if (!device.is_cuda()) return torch::tensor(v, torch::kLong);
  auto host =
      torch::empty({static_cast<int64_t>(v.size())}, torch::TensorOptions(torch::kLong).pinned_memory(true));
  if (!v.empty()) std::memcpy(host.data_ptr<int64_t>(), v.data(), v.size() * sizeof(int64_t));
  return host.to(device, /*non_blocking=*/true);  // the host allocator keeps the block until the copy ran
}

std::string torch_version() {
  return std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) + "." +
         std::to_string(TORCH_VERSION_PATCH);
}

}  // namespace pcmoe::model
