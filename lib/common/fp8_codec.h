// Owns the arithmetic of one fp8 code (see fp8.h for the formats): float -> code (round to
// nearest, ties to even, saturating; NaN -> a NaN code) and code -> float (exact). Header-only, so
// that the CPU codec (common/fp8.cpp) and the CUDA kernels
// (model/fp8_kernels.cu) run the same lines and agree bit for bit. Stateless, thread-safe.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#ifdef __CUDACC__
#define PCMOE_HOST_DEVICE __host__ __device__
#else
#define PCMOE_HOST_DEVICE
#endif

namespace pcmoe::fp8_codec {

struct Format {
  int mbits;          // mantissa bits
  int bias;           // exponent bias
  int max_exp_field;  // largest exponent field of a finite value
  int max_mant;       // largest mantissa at max_exp_field
  uint8_t nan;        // the NaN code written for NaN inputs (positive)
  bool ieee;          // E5M2: exponent field 31 is Inf (mantissa 0) or NaN; E4M3: only S.1111.111 is NaN
  float max_finite;   // the largest finite value
};

// By value (device code cannot take the address of a host constant).
PCMOE_HOST_DEVICE constexpr Format format_of(bool e4m3) {
  return e4m3 ? Format{3, 7, 15, 6, 0x7f, false, 448.0f} : Format{2, 15, 30, 3, 0x7f, true, 57344.0f};
}
constexpr Format kE4M3 = format_of(true);
constexpr Format kE5M2 = format_of(false);

PCMOE_HOST_DEVICE inline uint32_t bits_of(float x) {
#ifdef __CUDA_ARCH__
  return static_cast<uint32_t>(__float_as_uint(x));
#else
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
#endif
}

PCMOE_HOST_DEVICE inline float float_of(uint32_t u) {
#ifdef __CUDA_ARCH__
  return __uint_as_float(u);
#else
  float x;
  std::memcpy(&x, &u, sizeof x);
  return x;
#endif
}

// x * 2^e, exact for the values used here (powers of two times small integers).
PCMOE_HOST_DEVICE inline float scale2(float x, int e) {
#ifdef __CUDA_ARCH__
  return ldexpf(x, e);
#else
  return std::ldexp(x, e);
#endif
}

// Nearest integer, ties to even (the default rounding mode on the CPU; rintf on the device).
PCMOE_HOST_DEVICE inline float round_even(float x) {
#ifdef __CUDA_ARCH__
  return rintf(x);
#else
  return std::nearbyint(x);
#endif
}

PCMOE_HOST_DEVICE inline uint8_t encode(float x, const Format& F) {
  const uint32_t u = bits_of(x);
  const uint8_t sign = static_cast<uint8_t>((u >> 24) & 0x80);
  const uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return static_cast<uint8_t>(sign | F.nan);  // NaN
  const uint8_t max_code = static_cast<uint8_t>((F.max_exp_field << F.mbits) | F.max_mant);
  const int e = static_cast<int>(a >> 23) - 127;  // unbiased exponent (-127 for zero/subnormal)
  const int emin = 1 - F.bias;                    // exponent of the smallest normal
  if (e < emin) {
    // Subnormal target (or zero): units of 2^(emin - mbits), ties to even.
    const float q = round_even(scale2(float_of(a), F.mbits - emin));
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

PCMOE_HOST_DEVICE inline float decode(uint8_t v, const Format& F) {
  const bool neg = (v & 0x80) != 0;
  const int exp_field = (v & 0x7f) >> F.mbits;
  const int mant = v & ((1 << F.mbits) - 1);
  float r;
  if (!F.ieee && exp_field == 15 && mant == 7) {
    r = float_of(0x7fc00000u);  // NaN
  } else if (F.ieee && exp_field == 31) {
    r = float_of(mant == 0 ? 0x7f800000u : 0x7fc00000u);  // Inf or NaN
  } else if (exp_field == 0) {
    r = scale2(static_cast<float>(mant), 1 - F.bias - F.mbits);
  } else {
    r = scale2(1.0f + static_cast<float>(mant) / static_cast<float>(1 << F.mbits), exp_field - F.bias);
  }
  return neg ? -r : r;
}

}  // namespace pcmoe::fp8_codec
