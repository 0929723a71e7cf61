// Owns one training step, the same for every trainer (DESIGN.md "One training step"): forward
// through a backbone and an ExpertDispatcher (under bf16 autocast when asked), backward, the global
// gradient norm over the local parameters plus what remote hosts report, clipping, the commit of
// the parts outside this process, the local AdamW updates, and the step's metrics record.
// pcmoe-central (central, isolated), its protocol mode and the party's trainer all call it; only a
// party passes StepHooks (its FederatedDispatcher).
// A step applies everywhere or nowhere: a failure before the local update (a host, a non-finite
// loss or norm, a libtorch error as ModelError) aborts it through the hooks, clears the local
// gradients and rethrows; no parameter changed. Not thread-safe: one trainer thread.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <shared_mutex>
#include <string>
#include <vector>

#include "common/json.h"
#include "common/model_config.h"
#include "data/loader.h"
#include "model/backbone.h"
#include "model/expert.h"
#include "model/optim.h"

namespace pcmoe::train {

// What a step trains. Pointers are borrowed for the call.
struct StepModel {
  model::Backbone* backbone = nullptr;
  model::ExpertDispatcher* experts = nullptr;
  model::AdamW* backbone_opt = nullptr;     // every local parameter, or the backbone's only
  model::AdamW* experts_opt = nullptr;      // the local experts when they have their own optimizer
  std::shared_mutex* experts_mu = nullptr;  // if set: held shared for forward and backward, and
                                            // exclusively for experts_opt's update (a party's shard)
  torch::Device device = torch::kCPU;
  bool bf16 = false;  // autocast (CUDA only)
};

// The federated part of a step: what the expert hosts contribute (FederatedDispatcher).
class StepHooks {
 public:
  virtual ~StepHooks() = default;
  // Squared norm of the gradients held by the hosts, known once backward has returned.
  virtual double remote_grad_sq() const = 0;
  // Every host applies its part of step `step` scaled by `clip_scale`. Throws when a host did not
  // acknowledge; the step is then aborted and nothing is applied locally.
  virtual void commit(int64_t step, double clip_scale) = 0;
  // The hosts drop step `step` (their gradients and kept rows). Never throws.
  virtual void abort(int64_t step, const std::string& why) = 0;
};

struct StepOptions {
  // Synchronise the device at the end of forward and of backward so that the phase times are
  // true device times (free on the CPU; a small bubble on CUDA).
  bool time_phases = true;
  // CUDA without hooks (pcmoe-central): the clip scale stays on the device, so the optimizer is
  // queued without a host sync; the loss is checked for finiteness only after the update (the run
  // then stops with ModelError). Ignored with hooks or on the CPU.
  bool sync_free = false;
};

struct StepResult {
  int64_t step = 0;
  double loss = 0;       // mean cross-entropy (nats/token)
  double aux_loss = 0;   // load-balancing + z loss
  double grad_norm = 0;  // global norm before clipping (local + remote)
  double clip_scale = 1;
  double lr = 0;
  int64_t tokens = 0;
  std::vector<model::LayerStats> stats;      // per MoE layer: routing counts and mean gate
  double forward_ms = -1, backward_ms = -1;  // -1 when not timed (StepOptions::time_phases)
  double update_ms = 0;                      // norm, commit, local updates
  double data_ms = 0;                        // the batch from the loader to the device (loader overload)
  double step_ms = 0;

  // Appends the metrics fields every trainer writes: loss, aux_loss, lr, grad_norm,
  // tokens_per_s, step_ms, and forward_ms / backward_ms / update_ms when the phases were timed.
  void add_to(JsonObject& record) const;
};

// One step on `tokens` ([B, T+1] on m.device) at global step `step` (learning rate from `cfg`).
StepResult train_step(const StepModel& m, const torch::Tensor& tokens, int64_t step, const TrainConfig& cfg,
                      const StepOptions& options = {}, StepHooks* hooks = nullptr);
// The same on the next batch of `loader`; fetching it (and moving it to the device) is part of
// the step's time (step_ms, and data_ms).
StepResult train_step(const StepModel& m, data::BatchLoader& loader, int64_t step, const TrainConfig& cfg,
                      const StepOptions& options = {}, StepHooks* hooks = nullptr);

}  // namespace pcmoe::train
