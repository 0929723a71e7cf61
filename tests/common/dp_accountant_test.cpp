// The row mechanism's accounting (lib/common/dp_accountant.h), checked against the exact privacy
// curve of the Gaussian mechanism (Balle and Wang 2018): k releases with noise multiplier z are one
// Gaussian mechanism with mu = sqrt(k) / z, whose delta at epsilon is
// Phi(mu / 2 - eps / mu) - e^eps Phi(-mu / 2 - eps / mu). The RDP epsilon must be a valid bound
// (exact delta at it <= delta) and not a loose one (at 0.7 of it the exact delta is > delta).
#include <catch2/catch.hpp>

#include <cmath>

#include "common/dp_accountant.h"

using namespace pcmoe;

namespace {

double phi(double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); }

double exact_delta(double eps, double mu) {
  return phi(mu / 2 - eps / mu) - std::exp(eps) * phi(-mu / 2 - eps / mu);
}

}  // namespace

TEST_CASE("dp accountant: the RDP epsilon is a valid and reasonably tight bound", "[unit][audit]") {
  for (double z : {0.8, 2.0, 8.0}) {
    for (double k : {1.0, 8.0, 64.0}) {
      for (double delta : {1e-5, 1e-6}) {
        const double eps = dp::gaussian_epsilon(z, k, delta);
        const double mu = std::sqrt(k) / z;
        INFO("z " << z << " k " << k << " delta " << delta << " eps " << eps);
        CHECK(exact_delta(eps, mu) <= delta * 1.0001);
        CHECK(exact_delta(0.7 * eps, mu) > delta);
      }
    }
  }
}

TEST_CASE("dp accountant: the row bound's parts", "[unit][audit]") {
  CHECK(dp::row_noise_multiplier(4.0) == 2.0);  // sensitivity 2C for rows clipped to C
  CHECK(std::isinf(dp::gaussian_epsilon(0.0, 1, 1e-6)));
  CHECK(dp::gaussian_epsilon(1.0, 0, 1e-6) == 0.0);
  const auto b = dp::row_bound(4.0, 1e-6, 3, 2, 5);
  CHECK(b.releases_per_pass == 6);
  CHECK(b.eps_per_release < b.eps_per_pass);
  CHECK(b.eps_per_pass < b.eps_run);
  CHECK(b.eps_run == Approx(dp::gaussian_epsilon(2.0, 30, 1e-6)));
  CHECK(dp::gaussian_epsilon(4.0, 30, 1e-6) < b.eps_run);  // more noise, less epsilon
}
