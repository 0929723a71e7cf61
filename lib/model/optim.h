// Owns optimisation: AdamW with per-parameter state and step counts (so a host can step exactly
// the experts that received gradients in a step), the warmup + cosine learning-rate schedule, and
// global-norm gradient clipping helpers. State serialises to named tensors for checkpoints.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "common/model_config.h"

namespace pcmoe::model {

struct NamedParam {
  std::string name;
  torch::Tensor param;
};

// Learning rate at global step `step` (0-based): linear warmup to lr, then cosine to lr*min_lr_ratio.
double lr_at(const TrainConfig& cfg, int64_t step);
// The experts' learning rate at `step`: lr_at times train.expert_lr_scale (every expert optimizer
// steps with it: a host's, a concurrent round's, pcmoe-central's).
double expert_lr_at(const TrainConfig& cfg, int64_t step);

// Sum of squares of all defined gradients (one device sync).
double grad_sq_norm(const std::vector<torch::Tensor>& params);
// Scale that brings `total_norm` under `max_norm` (1 when max_norm <= 0 or already below).
double clip_scale(double total_norm, double max_norm);
// The same on the device, without a host sync: the global norm of all defined gradients as a
// 0-dim tensor, and min(1, max_norm / (norm + 1e-6)) (ones when max_norm <= 0).
torch::Tensor grad_norm_tensor(const std::vector<torch::Tensor>& params);
torch::Tensor clip_scale_tensor(const torch::Tensor& norm, double max_norm);

class AdamW {
 public:
  AdamW(std::vector<NamedParam> params, const TrainConfig& cfg);

  // Updates every parameter whose gradient is defined (gradients multiplied by clip_scale first),
  // then clears all gradients (undefined). Parameters without gradients keep their state and step
  // count untouched. Returns how many parameters were updated.
  int step(double lr, double clip_scale = 1.0);
  // The same with the clip scale as a 0-dim device tensor: on CUDA with libtorch 2.x one fused
  // AdamW kernel per weight-decay group and no host sync; elsewhere it reads the scale and
  // falls back to step(lr, double).
  int step(double lr, const torch::Tensor& clip_scale);
  // Clears every gradient (undefined, not zero).
  void zero_grad();
  // Allocates the moment buffers of every parameter now (zeros, step 0) instead of at its first
  // update, here and after load_state: the optimizer's memory is taken at start, so a memory
  // limit that cannot hold it fails then, not after hundreds of steps when the last expert first
  // receives a row, and the peak of a short run is the steady state's. Updates are unchanged.
  void reserve_state();

  const std::vector<NamedParam>& params() const { return params_; }
  std::vector<torch::Tensor> tensors() const;

  // State as named tensors "<prefix><param>.exp_avg", ".exp_avg_sq", ".step" (int64 scalar, CPU);
  // parameters never stepped are omitted (also when reserve_state allocated their buffers).
  std::vector<std::pair<std::string, torch::Tensor>> state_tensors(const std::string& prefix) const;
  // Restores state saved by state_tensors; `find` returns an undefined tensor for absent names.
  // Throws ModelError on shape mismatch.
  void load_state(const std::function<torch::Tensor(const std::string&)>& find, const std::string& prefix);

 private:
  struct State {
    torch::Tensor exp_avg, exp_avg_sq;
    int64_t step = 0;
    torch::Tensor step_t;  // fused path: the step as a float32 device scalar (kept in sync)
  };
  void init_state(size_t i);
  std::vector<NamedParam> params_;
  std::vector<State> state_;
  std::vector<bool> decay_;
  bool reserved_ = false;
  TrainConfig cfg_;
};

}  // namespace pcmoe::model
