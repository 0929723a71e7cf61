// The CPU fp8 codec (common/fp8.h): every code decodes to the OCP value and encodes back to itself;
// rounding is to nearest with ties to even; out-of-range values saturate, NaN stays NaN; the
// round-trip error of scaled rows is within half a unit in the last place of the format.
#include <catch2/catch.hpp>

#include <cmath>
#include <random>
#include <vector>

#include "common/fp8.h"

using namespace pcmoe;

TEST_CASE("fp8: every code is its own round trip; specials and extremes", "[unit][common]") {
  for (Fp8Format f : {Fp8Format::e4m3, Fp8Format::e5m2}) {
    INFO((f == Fp8Format::e4m3 ? "e4m3" : "e5m2"));
    for (int c = 0; c < 256; ++c) {
      const auto v = static_cast<uint8_t>(c);
      const float x = fp8_to_float(v, f);
      if (fp8_not_finite(v, f)) {
        CHECK_FALSE(std::isfinite(x));
        continue;
      }
      CHECK(std::isfinite(x));
      if (x == 0) continue;  // +0 and -0 both decode to a zero
      CHECK(fp8_from_float(x, f) == v);
    }
    CHECK(std::isnan(fp8_to_float(fp8_from_float(std::nanf(""), f), f)));
    CHECK(fp8_to_float(fp8_from_float(1e30f, f), f) == fp8_max(f));       // saturates
    CHECK(fp8_to_float(fp8_from_float(-INFINITY, f), f) == -fp8_max(f));  // no Inf on the way in
  }
  CHECK(fp8_max(Fp8Format::e4m3) == 448.0f);
  CHECK(fp8_max(Fp8Format::e5m2) == 57344.0f);
  CHECK(fp8_to_float(0x01, Fp8Format::e4m3) == std::ldexp(1.0f, -9));  // smallest subnormal
  CHECK(fp8_to_float(0x01, Fp8Format::e5m2) == std::ldexp(1.0f, -16));
  CHECK(fp8_not_finite(0x7f, Fp8Format::e4m3));
  CHECK_FALSE(fp8_not_finite(0x7e, Fp8Format::e4m3));  // 448
  CHECK(fp8_not_finite(0x7c, Fp8Format::e5m2));        // +Inf
  CHECK(std::isinf(fp8_to_float(0x7c, Fp8Format::e5m2)));
}

TEST_CASE("fp8: round to nearest, ties to even, including subnormals", "[unit][common]") {
  // e4m3 around 1: 1, 1.125, 1.25 ...; 1.0625 is a tie -> 1 (even), 1.1875 -> 1.25 (even).
  CHECK(fp8_to_float(fp8_from_float(1.0625f, Fp8Format::e4m3), Fp8Format::e4m3) == 1.0f);
  CHECK(fp8_to_float(fp8_from_float(1.1875f, Fp8Format::e4m3), Fp8Format::e4m3) == 1.25f);
  CHECK(fp8_to_float(fp8_from_float(1.07f, Fp8Format::e4m3), Fp8Format::e4m3) == 1.125f);
  // e5m2 around 1: 1, 1.25, 1.5, 1.75; 1.125 ties to 1, 1.375 to 1.5.
  CHECK(fp8_to_float(fp8_from_float(1.125f, Fp8Format::e5m2), Fp8Format::e5m2) == 1.0f);
  CHECK(fp8_to_float(fp8_from_float(1.375f, Fp8Format::e5m2), Fp8Format::e5m2) == 1.5f);
  // Subnormal e4m3 (units of 2^-9): 1.5 units ties to 2, 2.5 units ties to 2.
  const float u = std::ldexp(1.0f, -9);
  CHECK(fp8_to_float(fp8_from_float(1.5f * u, Fp8Format::e4m3), Fp8Format::e4m3) == 2 * u);
  CHECK(fp8_to_float(fp8_from_float(2.5f * u, Fp8Format::e4m3), Fp8Format::e4m3) == 2 * u);
  CHECK(fp8_to_float(fp8_from_float(0.4f * u, Fp8Format::e4m3), Fp8Format::e4m3) == 0.0f);
  // The largest subnormal rounds up into the smallest normal.
  CHECK(fp8_to_float(fp8_from_float(7.9f * u, Fp8Format::e4m3), Fp8Format::e4m3) == 8 * u);
  // Against a brute-force nearest (ties to the even code) over many values.
  std::mt19937 gen(3);
  std::uniform_real_distribution<float> dist(-500.0f, 500.0f);
  for (int i = 0; i < 20000; ++i) {
    const float x = dist(gen) * (i % 2 ? 1.0f : 1e-3f);
    float best = 0;
    double best_d = 1e30;
    int best_code = 0;
    for (int c = 0; c < 256; ++c) {
      const float y = fp8_to_float(static_cast<uint8_t>(c), Fp8Format::e4m3);
      if (!std::isfinite(y)) continue;
      const double d = std::fabs(static_cast<double>(y) - x);
      if (d < best_d || (d == best_d && (c & 1) == 0 && (best_code & 1) == 1)) {
        best_d = d;
        best = y;
        best_code = c;
      }
    }
    if (std::fabs(x) > 448.0f) best = std::copysign(448.0f, x);
    INFO("x = " << x);
    CHECK(fp8_to_float(fp8_from_float(x, Fp8Format::e4m3), Fp8Format::e4m3) == best);
  }
}

TEST_CASE("fp8: scaled rows round-trip within half an ulp of their block's scale", "[unit][common]") {
  const int64_t rows = 64, cols = 96;
  std::vector<float> x(static_cast<size_t>(rows * cols));
  std::mt19937 gen(11);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (int64_t r = 0; r < rows; ++r) {
    const float mag = std::pow(10.0f, static_cast<float>(r % 9) - 4.0f);  // rows from 1e-4 to 1e4
    for (int64_t c = 0; c < cols; ++c) x[static_cast<size_t>(r * cols + c)] = nd(gen) * mag;
  }
  x[5] = 0;  // zeros stay zero
  for (int64_t block : {int64_t{96}, int64_t{32}}) {
    for (Fp8Format f : {Fp8Format::e4m3, Fp8Format::e5m2}) {
      const int mbits = f == Fp8Format::e4m3 ? 3 : 2;
      std::vector<uint8_t> q(x.size());
      std::vector<float> s(static_cast<size_t>(rows * cols / block)), y(x.size());
      REQUIRE(fp8_quantize(x.data(), rows, cols, block, f, q.data(), s.data()));
      fp8_dequantize(q.data(), s.data(), rows, cols, block, f, y.data());
      for (int64_t r = 0; r < rows; ++r) {
        double err2 = 0, ref2 = 0;
        for (int64_t c = 0; c < cols; ++c) {
          const size_t i = static_cast<size_t>(r * cols + c);
          const float scale = s[static_cast<size_t>(r * (cols / block) + c / block)];
          const float v = x[i] / scale;
          // Half an ulp at v's binade (normals), or half the smallest subnormal step.
          const int e = std::max(static_cast<int>(std::floor(std::log2(std::max(std::fabs(v), 1e-30f)))),
                                 f == Fp8Format::e4m3 ? -6 : -14);
          CHECK(std::fabs(y[i] - x[i]) <= std::ldexp(0.5f, e - mbits) * scale * 1.0001f);
          err2 += (y[i] - x[i]) * (y[i] - x[i]);
          ref2 += x[i] * x[i];
        }
        if (ref2 > 0) CHECK(std::sqrt(err2 / ref2) < (f == Fp8Format::e4m3 ? 0.05 : 0.1));
      }
      CHECK(y[5] == 0.0f);
    }
  }
  x[7] = INFINITY;
  std::vector<uint8_t> q(x.size());
  std::vector<float> s(rows);
  CHECK_FALSE(fp8_quantize(x.data(), rows, cols, cols, Fp8Format::e4m3, q.data(), s.data()));
  // NaN too, wherever it stands in its block (a max that skips NaN would miss it).
  for (size_t at : {size_t{0}, size_t{7}, x.size() - 1}) {
    x[7] = 1.0f;
    x[at] = std::nanf("");
    INFO("NaN at " << at);
    CHECK_FALSE(fp8_quantize(x.data(), rows, cols, cols, Fp8Format::e4m3, q.data(), s.data()));
    std::vector<float> s4(x.size() / 4);
    CHECK_FALSE(fp8_quantize(x.data(), rows, cols, 4, Fp8Format::e5m2, q.data(), s4.data()));
    x[at] = 1.0f;
  }
}
