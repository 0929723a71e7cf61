// FP8 conversions and scaled quantization on the CPU (see fp8.h); the per-code arithmetic is
// common/fp8_codec.h, shared with the CUDA kernels.
#include "common/fp8.h"

#include "common/fp8_codec.h"

#include <algorithm>
#include <array>
#include <cfloat>
#include <cmath>

namespace pcmoe {
namespace {

using fp8_codec::decode;
using fp8_codec::encode;
using fp8_codec::Format;
using fp8_codec::kE4M3;
using fp8_codec::kE5M2;

const Format& fmt_of(Fp8Format f) { return f == Fp8Format::e4m3 ? kE4M3 : kE5M2; }

struct Tables {
  std::array<float, 256> e4m3, e5m2;
  Tables() {
    for (int i = 0; i < 256; ++i) {
      e4m3[static_cast<size_t>(i)] = decode(static_cast<uint8_t>(i), kE4M3);
      e5m2[static_cast<size_t>(i)] = decode(static_cast<uint8_t>(i), kE5M2);
    }
  }
};

const std::array<float, 256>& table(Fp8Format f) {
  static const Tables t;
  return f == Fp8Format::e4m3 ? t.e4m3 : t.e5m2;
}

}  // namespace

float fp8_max(Fp8Format f) { return fmt_of(f).max_finite; }

uint8_t fp8_from_float(float x, Fp8Format f) { return encode(x, fmt_of(f)); }

float fp8_to_float(uint8_t v, Fp8Format f) { return table(f)[v]; }

bool fp8_not_finite(uint8_t v, Fp8Format f) {
  if (f == Fp8Format::e4m3) return (v & 0x7f) == 0x7f;
  return (v & 0x7c) == 0x7c;
}

bool fp8_quantize(const float* x, int64_t rows, int64_t cols, int64_t block, Fp8Format f, uint8_t* q,
                  float* scales) {
  const Format& F = fmt_of(f);
  const float maxv = fp8_max(f);
  const int64_t nb = cols / block;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t b = 0; b < nb; ++b) {
      const float* xs = x + r * cols + b * block;
      float amax = 0;
      bool finite = true;  // std::max skips NaN (a comparison with NaN is false): tested on its own
      for (int64_t i = 0; i < block; ++i) {
        finite = finite && std::isfinite(xs[i]);
        amax = std::max(amax, std::fabs(xs[i]));
      }
      if (!finite) return false;
      // A normal scale (the wire refuses others): rows below FLT_MIN * max_finite keep FLT_MIN.
      const float s = amax > 0 ? std::max(amax / maxv, FLT_MIN) : 1.0f;
      scales[r * nb + b] = s;
      uint8_t* qs = q + r * cols + b * block;
      for (int64_t i = 0; i < block; ++i) qs[i] = encode(xs[i] / s, F);
    }
  }
  return true;
}

void fp8_dequantize(const uint8_t* q, const float* scales, int64_t rows, int64_t cols, int64_t block,
                    Fp8Format f, float* out) {
  const auto& t = table(f);
  const int64_t nb = cols / block;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t b = 0; b < nb; ++b) {
      const float s = scales[r * nb + b];
      const int64_t o = r * cols + b * block;
      for (int64_t i = 0; i < block; ++i) out[o + i] = t[q[o + i]] * s;
    }
  }
}

}  // namespace pcmoe
