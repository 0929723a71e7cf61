// FP8 conversions and scaled quantization on the CPU (see fp8.h).
#include "common/fp8.h"

#include <algorithm>
#include <array>
#include <cfloat>
#include <cmath>
#include <cstring>

namespace pcmoe {
namespace {

struct Format {
  int mbits;          // mantissa bits
  int bias;           // exponent bias
  int max_exp_field;  // largest exponent field of a finite value
  int max_mant;       // largest mantissa at max_exp_field
  uint8_t nan;        // the NaN code written for NaN inputs (positive)
};

constexpr Format kE4M3{3, 7, 15, 6, 0x7f};
constexpr Format kE5M2{2, 15, 30, 3, 0x7f};

const Format& fmt_of(Fp8Format f) { return f == Fp8Format::e4m3 ? kE4M3 : kE5M2; }

uint32_t bits_of(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
}

uint8_t encode(float x, const Format& F) {
  const uint32_t u = bits_of(x);
  const uint8_t sign = static_cast<uint8_t>((u >> 24) & 0x80);
  const uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return static_cast<uint8_t>(sign | F.nan);  // NaN
  const uint8_t max_code = static_cast<uint8_t>((F.max_exp_field << F.mbits) | F.max_mant);
  const int e = static_cast<int>(a >> 23) - 127;  // unbiased exponent (-127 for zero/subnormal)
  const int emin = 1 - F.bias;                    // exponent of the smallest normal
  if (e < emin) {
    // Subnormal target (or zero): units of 2^(emin - mbits), ties to even (nearbyint, default mode).
    float v;
    std::memcpy(&v, &a, sizeof v);
    const float q = std::nearbyint(std::ldexp(v, F.mbits - emin));
    return static_cast<uint8_t>(sign | static_cast<uint8_t>(q));  // q <= 2^mbits: the smallest normal
  }
  const int shift = 23 - F.mbits;
  uint32_t mant = a & 0x7fffffu;
  // Round the 23-bit mantissa to mbits, ties to even.
  mant += ((1u << (shift - 1)) - 1u) + ((mant >> shift) & 1u);
  int exp_field = e + F.bias;
  if (mant >> 23) {  // carried into the exponent
    mant = 0;
    exp_field += 1;
  } else {
    mant >>= shift;
  }
  if (exp_field > F.max_exp_field || (exp_field == F.max_exp_field && static_cast<int>(mant) > F.max_mant)) {
    return static_cast<uint8_t>(sign | max_code);  // saturate
  }
  return static_cast<uint8_t>(sign | (exp_field << F.mbits) | mant);
}

float decode(uint8_t v, const Format& F) {
  const bool neg = (v & 0x80) != 0;
  const int exp_field = (v & 0x7f) >> F.mbits;
  const int mant = v & ((1 << F.mbits) - 1);
  float r;
  if (&F == &kE4M3 && exp_field == 15 && mant == 7) {
    r = std::nanf("");
  } else if (&F == &kE5M2 && exp_field == 31) {
    r = mant == 0 ? INFINITY : std::nanf("");
  } else if (exp_field == 0) {
    r = std::ldexp(static_cast<float>(mant), 1 - F.bias - F.mbits);
  } else {
    r = std::ldexp(1.0f + static_cast<float>(mant) / static_cast<float>(1 << F.mbits), exp_field - F.bias);
  }
  return neg ? -r : r;
}

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

float fp8_max(Fp8Format f) { return f == Fp8Format::e4m3 ? 448.0f : 57344.0f; }

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
      for (int64_t i = 0; i < block; ++i) amax = std::max(amax, std::fabs(xs[i]));
      if (!std::isfinite(amax)) return false;
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
