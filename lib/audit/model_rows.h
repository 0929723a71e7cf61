// Owns what an attacker computes with a model it holds (its own, or for the white-box bound the
// victim's): the rows that model would send at each MoE layer for text the attacker has, with the
// token behind each row, and how its routers spread each token over the experts. pcmoe-attack
// trains its inversions on these (lib/audit/attacks.h).
#pragma once

#include <torch/torch.h>

#include <map>
#include <string>

#include "common/data_config.h"
#include "common/model_config.h"
#include "model/expert.h"

namespace pcmoe::audit {

struct LayerRows {
  torch::Tensor rows;          // [n, d] f32: the MoE layer's input row of each token position
  torch::Tensor tokens;        // [n] int64: the input token at that position
  torch::Tensor expert_token;  // [n_experts, vocab] f64: (expert, token) assignments over the top-k
};

struct ModelRows {
  std::map<int, LayerRows> layers;  // by model layer index (MoE layers only)
  torch::Tensor embeddings;         // [vocab, d] f32: the model's token embeddings
  torch::Tensor unigram;            // [vocab] f64: input token counts of the batches run
};

// Records, through ExpertDispatcher's audit hooks, the rows and routing of the forwards it serves
// (all experts local). Single-threaded.
class RecordingDispatcher : public model::ExpertDispatcher {
 public:
  RecordingDispatcher(model::ExpertShard& experts, int n_experts, int vocab);
  torch::Tensor dispatch(int layer, const torch::Tensor& x_sorted, const torch::Tensor& expert_sorted,
                         const std::vector<int64_t>& counts) override;
  void note_inputs(const torch::Tensor& inputs) override;
  void note_rows(int layer, const torch::Tensor& positions) override;
  // The rows recorded so far, concatenated per layer.
  ModelRows take();

 private:
  model::LocalDispatcher local_;
  int n_experts_;
  int vocab_;
  torch::Tensor inputs_;  // [B*T] of the current forward (CPU)
  std::map<int, torch::Tensor> positions_;
  std::map<int, std::vector<torch::Tensor>> rows_, tokens_;
  std::map<int, torch::Tensor> expert_token_;
  torch::Tensor unigram_;
};

// Loads `model_file` (an exported model: a backbone and every expert) and runs it, without
// gradients, on `batches` training batches of `data`. Throws DataError / ConfigError naming the
// file (a party checkpoint, which lacks the others' experts, is refused with a hint).
ModelRows collect_rows(const ModelConfig& model, const TrainConfig& train, const std::string& model_file,
                       const DataConfig& data, int batches, const torch::Device& device);

}  // namespace pcmoe::audit
