// Owns the memory footprint model of a training process: from the model config, the placement
// (how many experts this process hosts) and the batch, the bytes of weights, gradients and AdamW
// state of the backbone and of the hosted experts, of the activations of one training step, and of
// the rows other parties may stash here for backward. A party prints the breakdown at start and
// refuses to start when it does not fit its memory limit; the hub shows budgets and peaks.
// The activation terms count the tensors autograd keeps for backward (see footprint.cpp).
#pragma once

#include <cstdint>
#include <string>

#include "common/model_config.h"

namespace pcmoe::model {

struct FootprintInput {
  int64_t backbone_params = 0;
  int64_t hosted_expert_params = 0;
  int hosted_experts_per_layer = 0;  // experts of each MoE layer hosted here (max over layers)
  int n_parties = 1;                 // 1: pcmoe-central (all experts local)
  bool bf16 = false;                 // bf16 autocast
  int wire_bytes = 4;                // bytes per element of rows on the wire (stash in recompute mode)
  bool concurrent = false;           // concurrent rounds: hosting n_parties - 1 requesters while training
};

struct Footprint {
  uint64_t backbone_state = 0;          // weights + AdamW m, v (fp32)
  uint64_t expert_state = 0;            // the same for the hosted experts
  uint64_t gradients = 0;               // fp32 gradients of backbone and hosted experts (built in backward)
  uint64_t weight_casts = 0;            // bf16 copies of weights kept for backward under autocast
  uint64_t activations = 0;             // this process's own batch, forward kept for backward
  uint64_t backward_peak = 0;           // transient gradients of the largest layer during backward
  uint64_t last_layer_activations = 0;  // one block's activations (still alive as backward ends)
  uint64_t host_gradients = 0;          // hosted experts' gradients while serving a requester
  uint64_t remote_stash = 0;            // worst case of other parties' rows kept here (full saved tensors)
  uint64_t remote_stash_min = 0;        // the same in recompute mode (only the input rows kept)
  int concurrent_requesters = 0;        // concurrent rounds: requesters served at once (0: sequential)

  // Peak: the state plus the larger of this party's own step and what it keeps as a host (turns
  // are sequential: never both at once). Own step: activations + backward transient at the start
  // of backward, or all gradients plus one layer's activations at its end. Host: the hosted
  // experts' gradients plus the worst-case rows kept for backward. Concurrent rounds: both at
  // once, the rows of every other party (concurrent_requesters x remote_stash).
  uint64_t total() const;
  // The same when the host recomputes expert forwards in backward (the minimum it can run with).
  uint64_t minimum() const;
  // Human-readable table, one line per term, MiB.
  std::string table() const;
};

Footprint estimate_footprint(const ModelConfig& model, const TrainConfig& train, const FootprintInput& in);

// A lower bound of any trainer's footprint from the config alone (before anything is allocated):
// fp32 weights, gradients and AdamW state (16 bytes a parameter) of the backbone's embedding and
// attention matrices and of one expert per MoE layer.
double minimum_state_bytes(const ModelConfig& model);
// Throws ConfigError, naming the size keys, when even minimum_state_bytes() exceeds
// `device_bytes` (the device's memory, 0 = unknown: no check), so that an absurd size is refused at
// start instead of failing in an allocation later.
void check_model_fits(const ModelConfig& model, uint64_t device_bytes, const std::string& device);

}  // namespace pcmoe::model
