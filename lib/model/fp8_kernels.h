// Owns the CUDA kernels of fp8 on the wire (compiled only where CMake finds a CUDA compiler and
// libtorch has CUDA; see model/fp8_cuda.h for the torch-facing calls): one kernel quantizes rows
// (max |x| of each row, its scale, every code) and one dequantizes codes with their scales, in
// place of the ~15 and 3 libtorch operations of the same arithmetic (each a launch that costs the
// calling thread CPU time). The per-code arithmetic is common/fp8_codec.h, as on the CPU, so the
// results equal the CPU codec's bit for bit. Plain C++ interface (no CUDA or torch headers).
// Thread-safe; a call queues work on `stream` and does not wait for it.
#pragma once

#include <cstdint>

#include "common/fp8.h"

namespace pcmoe::model::kernels {

enum class Elem : int { f32 = 0, bf16 = 1, f16 = 2 };

// x: rows x cols elements (row-major, contiguous) on the device; codes: rows x cols bytes;
// scales: rows floats. A row with NaN or Inf gets a NaN scale.
// Returns nullptr, or CUDA's message for a launch that failed.
const char* fp8_quantize_rows(const void* x, Elem elem, int64_t rows, int64_t cols, Fp8Format f,
                              uint8_t* codes, float* scales, void* stream);
// out[i][j] = decode(codes[i][j]) * scales[i][j / block], written as `elem` (rounded to nearest
// even). cols % block == 0.
const char* fp8_dequantize(const uint8_t* codes, const float* scales, int64_t rows, int64_t cols,
                           int64_t block, Fp8Format f, void* out, Elem elem, void* stream);

}  // namespace pcmoe::model::kernels
