// Owns held-out evaluation of a backbone + experts: mean cross-entropy and bits per byte over a
// fixed set of held-out batches, without gradients, and batch -> tensor conversion.
#pragma once

#include <torch/torch.h>

#include <vector>

#include "data/loader.h"
#include "model/backbone.h"

namespace pcmoe::train {

struct EvalResult {
  double loss = 0;           // mean cross-entropy per target token (nats)
  double bits_per_byte = 0;  // total cross-entropy in bits / number of byte targets (ids < 256)
  int64_t tokens = 0;
  int64_t byte_targets = 0;
};

// [B, T+1] int64 tensor on `device`.
torch::Tensor batch_tensor(const data::Batch& batch, const torch::Device& device);
// Targets that are bytes (not BOS/EOS/PAD) in a batch.
int64_t count_byte_targets(const data::Batch& batch);

// Runs the batches without gradients (a remote dispatcher sees GradMode off: eval requests).
EvalResult evaluate(model::Backbone& backbone, model::ExpertDispatcher& experts,
                    const std::vector<data::Batch>& batches, const torch::Device& device, bool bf16);

}  // namespace pcmoe::train
