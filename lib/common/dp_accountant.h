// Owns the privacy accounting of the rows a party sends with privacy.row_clip > 0: each sent row
// is clipped to L2 norm C and gets Gaussian noise of standard deviation sigma * C, i.e. a Gaussian
// mechanism on one row. Two rows of norm <= C differ by at most 2C (replace-one neighbours), so the
// noise multiplier is z = sigma / 2. Accounting by Renyi DP (Mironov 2017): one release is
// (alpha, alpha / (2 z^2))-RDP; k releases compose to k alpha / (2 z^2); the conversion to
// (epsilon, delta) takes the best alpha of a fixed grid with the bound of Balle et al. 2020
// (eps = rdp + log((alpha - 1) / alpha) - (log delta + log alpha) / (alpha - 1)), as Opacus does.
// What it covers: the rows themselves (hidden states) as released to hosts. What it does not: the
// expert ids (routing), the gradients sent back in backward, eval rows (noised the same way, not
// counted), and the influence of one token on the rows of later positions through attention.
// Pure math, no state.
#pragma once

#include <cstdint>

namespace pcmoe::dp {

// The noise multiplier of the row mechanism: noise std / L2 sensitivity = sigma / 2.
double row_noise_multiplier(double sigma);

// Epsilon of `releases` compositions of a Gaussian mechanism with noise multiplier z, at delta.
// z <= 0 or releases <= 0: infinity (no noise) or 0 (nothing released).
double gaussian_epsilon(double z, double releases, double delta);

struct RowBound {
  double noise_multiplier = 0;
  double delta = 0;
  double eps_per_release = 0;    // one row
  double releases_per_pass = 0;  // rows one token position releases in one pass over its sequence
  double eps_per_pass = 0;
  double passes = 0;   // passes over the party's training data the run makes (upper bound)
  double eps_run = 0;  // releases_per_pass * passes releases
};

// The accounting of one party: `remote_moe_layers` MoE layers whose rows may leave, top_k rows
// each per token position and pass, `passes` passes over the data.
RowBound row_bound(double sigma, double delta, int remote_moe_layers, int top_k, double passes);

}  // namespace pcmoe::dp
