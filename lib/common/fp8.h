// Owns the 8-bit float formats of the wire (OCP FP8, as PyTorch's float8_e4m3fn / float8_e5m2)
// converted on the CPU, and row-wise scaled quantization:
//   E4M3 ("fn"): 1 sign, 4 exponent (bias 7), 3 mantissa bits; no infinities; S.1111.111 is NaN;
//                largest finite 448, smallest subnormal 2^-9.
//   E5M2:        1 sign, 5 exponent (bias 15), 2 mantissa bits; IEEE-like: exponent 31 is Inf
//                (mantissa 0) or NaN; largest finite 57344, smallest subnormal 2^-16.
// float -> fp8 rounds to nearest, ties to even, and saturates at the largest finite value; fp8 ->
// float is exact (a table). A scaled tensor is q = fp8(x / s) with one scale s per `block`
// consecutive elements of a row, s = max(amax(|x|) / max_finite, FLT_MIN) (1 for an all-zero
// block), so every block uses the whole range and every scale is a normal float.
// Stateless, thread-safe, no allocation.
#pragma once

#include <cstdint>

namespace pcmoe {

enum class Fp8Format : uint8_t { e4m3, e5m2 };

float fp8_max(Fp8Format f);
uint8_t fp8_from_float(float x, Fp8Format f);  // NaN -> a NaN code; +-Inf saturates like any big value
float fp8_to_float(uint8_t v, Fp8Format f);
// True for the codes that are NaN (E4M3, E5M2) or Inf (E5M2).
bool fp8_not_finite(uint8_t v, Fp8Format f);

// x: rows x cols floats, row-major; cols % block == 0. Writes q (rows x cols codes) and scales
// (rows x cols/block). Returns false (and writes nothing useful) if x holds NaN or Inf.
bool fp8_quantize(const float* x, int64_t rows, int64_t cols, int64_t block, Fp8Format f, uint8_t* q,
                  float* scales);
// The inverse: out[i][j] = fp8_to_float(q[i][j]) * scales[i][j / block].
void fp8_dequantize(const uint8_t* q, const float* scales, int64_t rows, int64_t cols, int64_t block,
                    Fp8Format f, float* out);

}  // namespace pcmoe
