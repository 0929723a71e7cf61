// Held-out evaluation (see evaluate.h).
#include "train/evaluate.h"

#include <cmath>

#include "model/compat.h"

namespace pcmoe::train {

torch::Tensor batch_tensor(const data::Batch& batch, const torch::Device& device) {
  auto t = torch::from_blob(const_cast<int32_t*>(batch.tokens.data()), {batch.batch_size, batch.seq_len + 1},
                            torch::kInt32);
  return t.to(device, torch::kLong);
}

int64_t count_byte_targets(const data::Batch& batch) {
  int64_t n = 0;
  const int64_t row = batch.seq_len + 1;
  for (int64_t b = 0; b < batch.batch_size; ++b) {
    for (int64_t i = 1; i < row; ++i) n += batch.tokens[static_cast<size_t>(b * row + i)] < 256 ? 1 : 0;
  }
  return n;
}

EvalResult evaluate(model::Backbone& backbone, model::ExpertDispatcher& experts,
                    const std::vector<data::Batch>& batches, const torch::Device& device, bool bf16) {
  torch::NoGradGuard no_grad;
  EvalResult r;
  double nats = 0;
  for (const auto& b : batches) {
    model::AutocastGuard autocast(bf16, device);
    auto out = backbone->forward(batch_tensor(b, device), experts);
    nats += out.ce_loss.item<double>() * static_cast<double>(out.tokens);
    r.tokens += out.tokens;
    r.byte_targets += count_byte_targets(b);
  }
  if (r.tokens > 0) r.loss = nats / static_cast<double>(r.tokens);
  if (r.byte_targets > 0) r.bits_per_byte = nats / std::log(2.0) / static_cast<double>(r.byte_targets);
  return r;
}

}  // namespace pcmoe::train
