// Renyi-DP accounting of the row mechanism (see dp_accountant.h).
#include "common/dp_accountant.h"

#include <cmath>
#include <limits>

namespace pcmoe::dp {

double row_noise_multiplier(double sigma) { return sigma / 2.0; }

double gaussian_epsilon(double z, double releases, double delta) {
  if (releases <= 0) return 0.0;
  if (z <= 0 || delta <= 0 || delta >= 1) return std::numeric_limits<double>::infinity();
  double best = std::numeric_limits<double>::infinity();
  // Orders 1.01 .. 10 finely, then up to 4096 geometrically.
  auto consider = [&](double alpha) {
    const double rdp = releases * alpha / (2.0 * z * z);
    const double eps =
        rdp + std::log((alpha - 1.0) / alpha) - (std::log(delta) + std::log(alpha)) / (alpha - 1.0);
    if (eps < best) best = eps;
  };
  for (double a = 1.01; a < 10.0; a += 0.01) consider(a);
  for (double a = 10.0; a <= 4096.0; a *= 1.05) consider(a);
  return std::max(best, 0.0);
}

RowBound row_bound(double sigma, double delta, int remote_moe_layers, int top_k, double passes) {
  RowBound b;
  b.noise_multiplier = row_noise_multiplier(sigma);
  b.delta = delta;
  b.eps_per_release = gaussian_epsilon(b.noise_multiplier, 1.0, delta);
  b.releases_per_pass = static_cast<double>(remote_moe_layers) * top_k;
  b.eps_per_pass = gaussian_epsilon(b.noise_multiplier, b.releases_per_pass, delta);
  b.passes = passes;
  b.eps_run = gaussian_epsilon(b.noise_multiplier, b.releases_per_pass * passes, delta);
  return b;
}

}  // namespace pcmoe::dp
