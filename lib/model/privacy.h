// Owns the privacy defences applied to a party's backbone and to the rows it sends to hosts
// (README "Privacy"): where the backbone's initial weights come from (the party's private seed,
// or the federation's shared initialisation: the leaking case), a private rotation of the hidden
// space, row clipping and Gaussian row noise. The same functions serve pcmoe-party, pcmoe-central's
// protocol mode and pcmoe-attack (which applies a victim's defence to its own training rows).
#pragma once

#include <torch/torch.h>

#include <cstdint>

#include "common/party_config.h"
#include "model/backbone.h"

namespace pcmoe::model {

// The seed of a party's backbone: its private seed, or with `shared_init` one every party of the
// federation shares (derived from train.expert_seed, public within the federation).
uint64_t backbone_init_seed(bool shared_init, uint64_t expert_seed, uint64_t private_seed);

// A party's initial backbone: from backbone_init_seed(privacy.shared_init, train.expert_seed,
// private_seed), turned (privacy.rotate_hidden) by a rotation drawn from the private seed.
Backbone initial_backbone(const ModelConfig& model, const TrainConfig& train, const PrivacyConfig& privacy,
                          uint64_t private_seed);

// A random orthogonal [d, d] matrix (fp32, CPU) drawn from `seed` (Haar: QR of a Gaussian matrix
// with the signs of R's diagonal folded into Q).
torch::Tensor random_rotation(int64_t d, uint64_t seed);

// Turns the backbone's hidden space by `rotation` ([d, d] orthogonal), in place, without changing
// what the backbone computes for its own tokens: every weight that reads the residual stream is
// right-multiplied by R, every weight that writes it left-multiplied by R^T. The rows it sends to
// experts become the old rows times R (the shared experts see them so from then on). Needs RMS
// norms with uniform weights (true at initialisation); throws ModelError otherwise or for a
// parameter it does not know.
void rotate_hidden(Backbone& backbone, const torch::Tensor& rotation);

// Each row scaled to L2 norm at most `clip` (autograd flows through the scaling).
torch::Tensor clip_rows(const torch::Tensor& x, double clip);

// x plus Gaussian noise of std `sigma` * unit, unit = `clip` when clip > 0 (each row already
// clipped to it: the Gaussian mechanism), else each row's RMS. Drawn on the CPU from `gen`; x is
// not modified. sigma <= 0: x itself.
torch::Tensor add_row_noise(const torch::Tensor& x, double clip, double sigma, at::Generator& gen);

}  // namespace pcmoe::model
