// Owns the differences between the libtorch versions pcmoe builds against (1.13 CPU on Debian,
// 2.x CUDA on the GPU machine): fused attention, autocast, generators, device/memory queries.
// Everything version-dependent goes through here, so the rest of lib/model is version-free.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>

#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
#define PCMOE_TORCH_NEW_AUTOCAST 1
#else
#define PCMOE_TORCH_NEW_AUTOCAST 0
#endif
#if TORCH_VERSION_MAJOR >= 2
#define PCMOE_TORCH_HAS_SDPA 1
#define PCMOE_TORCH_HAS_FUSED_ADAMW 1
#else
#define PCMOE_TORCH_HAS_SDPA 0
#define PCMOE_TORCH_HAS_FUSED_ADAMW 0
#endif
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 1)
#define PCMOE_TORCH_HAS_FLOAT8 1  // at::kFloat8_e4m3fn, at::kFloat8_e5m2
#else
#define PCMOE_TORCH_HAS_FLOAT8 0
#endif
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 8)
#define PCMOE_TORCH_HAS_GROUPED_MM 1
#else
#define PCMOE_TORCH_HAS_GROUPED_MM 0
#endif

namespace pcmoe::model {

// Causal self-attention over [B, H, T, D] tensors: fused scaled-dot-product attention where the
// libtorch version has it (2.x: flash/efficient kernels), else an explicit masked softmax.
torch::Tensor causal_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v);

// Enables bf16 autocast on CUDA for its lifetime (no-op when !enabled or on CPU). Not nestable
// across threads: autocast state is thread-local, which is what we want.
class AutocastGuard {
 public:
  AutocastGuard(bool enabled, const torch::Device& device);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  bool active_ = false;
  bool prev_ = false;
};

// Disables autocast in a scope (router logits and losses run in fp32).
class NoAutocastGuard {
 public:
  explicit NoAutocastGuard(const torch::Device& device);
  ~NoAutocastGuard();

 private:
  bool cuda_ = false;
  bool prev_ = false;
};

// True when bf16 autocast is on for CUDA in this thread.
bool cuda_autocast_enabled();

// Grouped GEMM (one kernel for all experts of a layer, Hopper bf16): x [R, K] bf16 with rows
// grouped contiguously, offs [G] int32 cumulative row ends (on x's device), w [G, N, K] bf16.
// Returns [R, N] bf16 with rows of group g multiplied by w[g]^T. Only where
// grouped_mm_available(); throws c10::Error if the kernel rejects the shapes.
torch::Tensor grouped_linear(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& offs);
// Compiled in, on CUDA, and not disabled by PCMOE_GROUPED_MM=0 or an earlier failure.
bool grouped_mm_available(const torch::Device& device);
// Turns the grouped path off for the rest of the process (after a kernel failure), with a log line.
void disable_grouped_mm(const std::string& why);

// A CPU generator seeded deterministically: weights are drawn on the CPU and then moved, so the
// same seed gives the same weights on every device and libtorch version.
at::Generator make_cpu_generator(uint64_t seed);

// Parses "cpu", "cuda", "cuda:N"; throws ConfigError if unknown or if CUDA is asked for and absent.
torch::Device parse_device(const std::string& name);

// `v` as an int64 tensor on `device`. On CUDA it goes through pinned memory and is queued on the
// current stream without waiting for it (torch::tensor(v).to(device) copies from pageable memory,
// which synchronises the stream: the CPU would wait for every kernel queued before).
torch::Tensor upload_indices(const std::vector<int64_t>& v, const torch::Device& device);

// Peak memory of `device` since the last reset: CUDA allocator allocated/reserved bytes; on the
// CPU, the process's peak resident set (VmHWM) for both.
struct PeakMemory {
  uint64_t allocated_bytes = 0;
  uint64_t reserved_bytes = 0;
};
PeakMemory peak_memory(const torch::Device& device);
void reset_peak_memory(const torch::Device& device);
// Returns cached, unused blocks of the CUDA caching allocator to the driver (no-op on CPU).
void empty_cache(const torch::Device& device);
// Caps the CUDA caching allocator of `device` at `bytes` (fraction of the card); no-op on CPU.
void set_memory_limit(const torch::Device& device, uint64_t bytes);
// Total memory of a CUDA device (0 on CPU).
uint64_t device_total_memory(const torch::Device& device);

// Sets libtorch's intra-op threads (0: all cores). The first call also applies PCMOE_CUDA_SYNC
// (bench only: how threads wait for cuda:0; compat.cpp), before any CUDA context exists.
void set_threads(int n);

// libtorch version string, e.g. "1.13.1".
std::string torch_version();

}  // namespace pcmoe::model
