// The fp8 wire kernels (see fp8_kernels.h). Memory-bound and small (a request is at most a few
// MB): what they save is launches, not arithmetic.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cfloat>

#include "common/fp8_codec.h"
#include "model/fp8_kernels.h"

namespace pcmoe::model::kernels {
namespace {

constexpr int kThreads = 256;  // a multiple of 32

__device__ __forceinline__ float load(const float* p, int64_t i) { return p[i]; }
__device__ __forceinline__ float load(const __nv_bfloat16* p, int64_t i) { return __bfloat162float(p[i]); }
__device__ __forceinline__ float load(const __half* p, int64_t i) { return __half2float(p[i]); }

__device__ __forceinline__ void store(float* p, int64_t i, float v) { p[i] = v; }
__device__ __forceinline__ void store(__nv_bfloat16* p, int64_t i, float v) { p[i] = __float2bfloat16_rn(v); }
__device__ __forceinline__ void store(__half* p, int64_t i, float v) { p[i] = __float2half_rn(v); }

// One block per row: the row's max |x| and whether it holds NaN/Inf (a block reduction), its scale
// as the CPU codec computes it (correctly rounded division; nvcc's default -prec-div=true), then
// every code.
template <typename T>
__global__ void quantize_rows(const T* x, int64_t cols, bool e4m3, uint8_t* codes, float* scales) {
  const fp8_codec::Format F = fp8_codec::format_of(e4m3);
  const int64_t row = blockIdx.x;
  const T* xr = x + row * cols;
  float amax = 0.0f;
  int bad = 0;
  for (int64_t i = threadIdx.x; i < cols; i += blockDim.x) {
    const float v = load(xr, i);
    bad |= !isfinite(v);
    amax = fmaxf(amax, fabsf(v));
  }
  for (int off = 16; off > 0; off >>= 1) {
    amax = fmaxf(amax, __shfl_down_sync(0xffffffffu, amax, off));
    bad |= __shfl_down_sync(0xffffffffu, bad, off);
  }
  __shared__ float warp_max[kThreads / 32];
  __shared__ int warp_bad[kThreads / 32];
  __shared__ float row_scale;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) {
    warp_max[warp] = amax;
    warp_bad[warp] = bad;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int w = 1; w < static_cast<int>(blockDim.x / 32); ++w) {
      amax = fmaxf(amax, warp_max[w]);
      bad |= warp_bad[w];
    }
    const float s = bad           ? __uint_as_float(0x7fc00000u)
                    : amax > 0.0f ? fmaxf(amax / F.max_finite, FLT_MIN)
                                  : 1.0f;
    scales[row] = s;
    row_scale = s;
  }
  __syncthreads();
  const float s = row_scale;
  uint8_t* cr = codes + row * cols;
  for (int64_t i = threadIdx.x; i < cols; i += blockDim.x) cr[i] = fp8_codec::encode(load(xr, i) / s, F);
}

template <typename T>
__global__ void dequantize(const uint8_t* codes, const float* scales, int64_t n, int64_t cols, int64_t block,
                           bool e4m3, T* out) {
  const fp8_codec::Format F = fp8_codec::format_of(e4m3);
  const int64_t per_row = cols / block;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t row = i / cols, col = i % cols;
    store(out, i, fp8_codec::decode(codes[i], F) * scales[row * per_row + col / block]);
  }
}

const char* launched() {
  const cudaError_t e = cudaGetLastError();
  return e == cudaSuccess ? nullptr : cudaGetErrorString(e);
}

}  // namespace

const char* fp8_quantize_rows(const void* x, Elem elem, int64_t rows, int64_t cols, Fp8Format f,
                              uint8_t* codes, float* scales, void* stream) {
  if (rows <= 0 || cols <= 0) return nullptr;
  auto s = static_cast<cudaStream_t>(stream);
  const bool e4m3 = f == Fp8Format::e4m3;
  const auto grid = static_cast<unsigned>(rows);
  switch (elem) {
    case Elem::f32:
      quantize_rows<<<grid, kThreads, 0, s>>>(static_cast<const float*>(x), cols, e4m3, codes, scales);
      break;
    case Elem::bf16:
      quantize_rows<<<grid, kThreads, 0, s>>>(static_cast<const __nv_bfloat16*>(x), cols, e4m3, codes,
                                              scales);
      break;
    case Elem::f16:
      quantize_rows<<<grid, kThreads, 0, s>>>(static_cast<const __half*>(x), cols, e4m3, codes, scales);
      break;
  }
  return launched();
}

const char* fp8_dequantize(const uint8_t* codes, const float* scales, int64_t rows, int64_t cols,
                           int64_t block, Fp8Format f, void* out, Elem elem, void* stream) {
  const int64_t n = rows * cols;
  if (n <= 0) return nullptr;
  auto s = static_cast<cudaStream_t>(stream);
  const bool e4m3 = f == Fp8Format::e4m3;
  const int64_t blocks = (n + kThreads - 1) / kThreads;
  const auto grid = static_cast<unsigned>(blocks < 8192 ? blocks : 8192);  // grid-stride beyond
  switch (elem) {
    case Elem::f32:
      dequantize<<<grid, kThreads, 0, s>>>(codes, scales, n, cols, block, e4m3, static_cast<float*>(out));
      break;
    case Elem::bf16:
      dequantize<<<grid, kThreads, 0, s>>>(codes, scales, n, cols, block, e4m3,
                                           static_cast<__nv_bfloat16*>(out));
      break;
    case Elem::f16:
      dequantize<<<grid, kThreads, 0, s>>>(codes, scales, n, cols, block, e4m3, static_cast<__half*>(out));
      break;
  }
  return launched();
}

}  // namespace pcmoe::model::kernels
