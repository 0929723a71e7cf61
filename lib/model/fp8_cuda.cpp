// The fp8 wire kernels from torch tensors (see fp8_cuda.h).
#include "model/fp8_cuda.h"

#include <cstdlib>
#include <cstring>

#include "common/error.h"
#include "model/tensor_io.h"

#if defined(PCMOE_WITH_FP8_KERNELS)
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "model/fp8_kernels.h"
#endif

namespace pcmoe::model {

#if defined(PCMOE_WITH_FP8_KERNELS)
namespace {

kernels::Elem elem_of(torch::ScalarType t) {
  switch (t) {
    case torch::kBFloat16:
      return kernels::Elem::bf16;
    case torch::kHalf:
      return kernels::Elem::f16;
    default:
      return kernels::Elem::f32;
  }
}

void check_launch(const char* error, const char* what) {
  PCMOE_CHECK_T(ModelError, error == nullptr, "fp8 {} kernel: {}", what, error ? error : "");
}

}  // namespace

bool fp8_kernels_enabled() {
  static const bool on = [] {
    const char* v = std::getenv("PCMOE_FP8_KERNELS");
    return v == nullptr || std::strcmp(v, "0") != 0;
  }();
  return on;
}

std::pair<torch::Tensor, torch::Tensor> fp8_quantize_rows_cuda(const torch::Tensor& t, Fp8Format f) {
  PCMOE_CHECK_T(ModelError, t.is_cuda() && t.dim() == 2, "fp8 quantize: rows [R, d] on CUDA, not {}",
                shape_str(t));
  auto x = t.detach();
  const auto st = x.scalar_type();
  if (st != torch::kFloat32 && st != torch::kBFloat16 && st != torch::kHalf) x = x.to(torch::kFloat32);
  x = x.contiguous();
  const c10::cuda::CUDAGuard guard(x.device());
  const int64_t rows = x.size(0), cols = x.size(1);
  auto codes = torch::empty({rows, cols}, x.options().dtype(torch::kUInt8));
  auto scales = torch::empty({rows}, x.options().dtype(torch::kFloat32));
  check_launch(kernels::fp8_quantize_rows(x.data_ptr(), elem_of(x.scalar_type()), rows, cols, f,
                                          codes.data_ptr<uint8_t>(), scales.data_ptr<float>(),
                                          c10::cuda::getCurrentCUDAStream().stream()),
               "quantize");
  return {codes, scales};
}

torch::Tensor fp8_dequantize_cuda(const torch::Tensor& codes, const torch::Tensor& scales, int64_t block,
                                  Fp8Format f, torch::ScalarType dtype) {
  PCMOE_CHECK_T(ModelError, codes.is_cuda() && codes.dim() == 2 && block > 0 && codes.size(1) % block == 0,
                "fp8 dequantize: codes [R, d] on CUDA with d a multiple of {}, not {}", block,
                shape_str(codes));
  const auto c = codes.contiguous();
  const auto s = scales.to(codes.device(), torch::kFloat32).contiguous();
  PCMOE_CHECK_T(ModelError, s.numel() == c.size(0) * (c.size(1) / block),
                "fp8 dequantize: {} scales for {} rows", s.numel(), c.size(0));
  const auto out_type = dtype == torch::kBFloat16 || dtype == torch::kHalf ? dtype : torch::kFloat32;
  const c10::cuda::CUDAGuard guard(c.device());
  auto out = torch::empty(c.sizes(), c.options().dtype(out_type));
  check_launch(
      kernels::fp8_dequantize(c.data_ptr<uint8_t>(), s.data_ptr<float>(), c.size(0), c.size(1), block, f,
                              out.data_ptr(), elem_of(out_type), c10::cuda::getCurrentCUDAStream().stream()),
      "dequantize");
  return out_type == dtype ? out : out.to(dtype);
}

#else  // no kernels in this build

bool fp8_kernels_enabled() { return false; }

std::pair<torch::Tensor, torch::Tensor> fp8_quantize_rows_cuda(const torch::Tensor&, Fp8Format) {
  throw ModelError("this build has no fp8 CUDA kernels (built without nvcc)");
}

torch::Tensor fp8_dequantize_cuda(const torch::Tensor&, const torch::Tensor&, int64_t, Fp8Format,
                                  torch::ScalarType) {
  throw ModelError("this build has no fp8 CUDA kernels (built without nvcc)");
}

#endif

}  // namespace pcmoe::model
