// Owns the MoE layer's data movement: given rows and their routing, flatten the top-k
// assignments, drop those over capacity, sort rows by expert, hand them to an ExpertDispatcher and
// combine the expert outputs weighted by their gates. Also fills the per-expert statistics.
#pragma once

#include <torch/torch.h>

#include "model/expert.h"
#include "model/router.h"

namespace pcmoe::model {

// x: [N, d] rows; r: their routing. Returns [N, d] = sum over kept assignments of
// gate * expert(x). `stats` (optional) receives counts and mean router probabilities.
torch::Tensor moe_combine(const torch::Tensor& x, const Routing& r, int layer, int n_experts,
                          ExpertDispatcher& experts, LayerStats* stats);

}  // namespace pcmoe::model
