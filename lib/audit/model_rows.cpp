// Rows and routing of a model the attacker holds (see model_rows.h).
#include "audit/model_rows.h"

#include <fmt/format.h>

#include "common/error.h"
#include "data/loader.h"
#include "model/backbone.h"
#include "train/checkpoint.h"
#include "train/evaluate.h"

namespace pcmoe::audit {

RecordingDispatcher::RecordingDispatcher(model::ExpertShard& experts, int n_experts, int vocab)
    : local_(experts),
      n_experts_(n_experts),
      vocab_(vocab),
      unigram_(torch::zeros({vocab}, torch::kFloat64)) {}

void RecordingDispatcher::note_inputs(const torch::Tensor& inputs) {
  inputs_ = inputs.reshape({-1}).to(torch::kCPU, torch::kLong).contiguous();
  positions_.clear();
  unigram_.index_add_(0, inputs_, torch::ones({inputs_.size(0)}, torch::kFloat64));
}

void RecordingDispatcher::note_rows(int layer, const torch::Tensor& positions) {
  positions_[layer] = positions.to(torch::kCPU, torch::kLong);
}

torch::Tensor RecordingDispatcher::dispatch(int layer, const torch::Tensor& x_sorted,
                                            const torch::Tensor& expert_sorted,
                                            const std::vector<int64_t>& counts) {
  auto it = positions_.find(layer);
  PCMOE_CHECK_T(ModelError, inputs_.defined() && it != positions_.end(),
                "recording dispatcher: layer {} dispatched without its audit hooks", layer);
  const auto& pos = it->second;
  const auto tok = inputs_.index_select(0, pos);
  // One row per position (its top-k rows are the same hidden state): the first of each.
  const int64_t n = inputs_.size(0);
  auto first = torch::full({n}, -1, torch::kLong);
  first.index_put_({pos.flip(0)}, torch::arange(pos.size(0) - 1, -1, -1, torch::kLong));
  auto keep = first.masked_select(first >= 0);
  auto x = x_sorted.detach().to(torch::kCPU, torch::kFloat32);
  rows_[layer].push_back(x.index_select(0, keep));
  tokens_[layer].push_back(tok.index_select(0, keep));
  auto& et = expert_token_[layer];
  if (!et.defined()) et = torch::zeros({n_experts_ * vocab_}, torch::kFloat64);
  auto flat = expert_sorted.to(torch::kCPU, torch::kLong) * vocab_ + tok;
  et.index_add_(0, flat, torch::ones({flat.size(0)}, torch::kFloat64));
  return local_.dispatch(layer, x_sorted, expert_sorted, counts);
}

ModelRows RecordingDispatcher::take() {
  ModelRows out;
  for (auto& [layer, parts] : rows_) {
    LayerRows l;
    l.rows = torch::cat(parts, 0);
    l.tokens = torch::cat(tokens_[layer], 0);
    l.expert_token = expert_token_[layer].view({n_experts_, vocab_});
    out.layers[layer] = std::move(l);
  }
  out.unigram = unigram_;
  rows_.clear();
  tokens_.clear();
  expert_token_.clear();
  return out;
}

ModelRows collect_rows(const ModelConfig& model, const TrainConfig& train, const std::string& model_file,
                       const DataConfig& data, int batches, const torch::Device& device) {
  model::Backbone backbone(model, 1);  // every weight comes from the file
  model::ExpertShard experts(model, train.expert_seed, [](int, int) { return true; });
  TensorFile file = train::load_checkpoint(model_file, model);
  if (file.meta.count("kind") && file.meta.at("kind") == "party") {
    throw DataError(
        fmt::format("{}: a party checkpoint holds only its own experts; give the party's exported "
                    "model (model.pcmoe: its backbone and the whole pool)",
                    model_file));
  }
  train::load_model_weights(file, backbone, experts);
  backbone->to(device);
  experts.to(device);
  RecordingDispatcher rec(experts, model.n_experts, model.vocab_size);
  torch::NoGradGuard no_grad;
  data::BatchLoader loader(data, data::Split::train, train.batch_size, model.seq_len);
  for (int i = 0; i < batches; ++i) backbone->forward(train::batch_tensor(loader.next(), device), rec);
  ModelRows out = rec.take();
  for (auto& p : backbone->named_parameters()) {
    if (p.key() == "tok_emb") out.embeddings = p.value().detach().to(torch::kCPU, torch::kFloat32);
  }
  return out;
}

}  // namespace pcmoe::audit
