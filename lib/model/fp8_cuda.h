// Owns the torch-facing calls of the fp8 wire kernels (model/fp8_kernels.h): one launch to
// quantize rows, one to dequantize, on the current CUDA stream of the tensors' device, without
// waiting for it. Present in CUDA builds where CMake found nvcc (PCMOE_WITH_FP8_KERNELS); the
// results equal the CPU codec's (common/fp8.h) bit for bit. Thread-safe.
#pragma once

#include <torch/torch.h>

#include <utility>

#include "common/fp8.h"

namespace pcmoe::model {

// Whether the kernels are built in and not switched off: the environment variable
// PCMOE_FP8_KERNELS=0 (read once) sends the fp8 wire back to libtorch operations, for A/B runs.
bool fp8_kernels_enabled();

// t [R, d] on CUDA (fp32, bf16 or fp16; other dtypes are cast to fp32 first): codes [R, d] (uint8)
// and one fp32 scale per row [R], on t's device. A row with NaN or Inf gets a NaN scale.
// Throws ModelError if the kernels are not built in or the launch fails.
std::pair<torch::Tensor, torch::Tensor> fp8_quantize_rows_cuda(const torch::Tensor& t, Fp8Format f);

// codes [R, d] (uint8) and scales [R, d / block] (fp32), both on one CUDA device: the values as
// `dtype` (fp32, bf16 or fp16) on that device. Throws ModelError as above.
torch::Tensor fp8_dequantize_cuda(const torch::Tensor& codes, const torch::Tensor& scales, int64_t block,
                                  Fp8Format f, torch::ScalarType dtype);

}  // namespace pcmoe::model
