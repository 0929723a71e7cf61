// Owns the requester side of PC-MoE's remote expert calls: the FederatedDispatcher the party's
// backbone uses at every MoE layer. Rows for the party's own experts are computed locally; for
// each remote host it sends the rows routed to any of that host's experts in requests of about
// max_request_rows rows (one expert's rows never split; so the host pipelines wire and compute) —
// each shuffled with a private permutation, optionally noised, carrying only hidden states and expert
// ids — and all requests are in flight while the local experts compute. With gradients enabled
// the remote results enter autograd through RemoteCall, whose backward sends the output
// gradients to each host and receives the input gradients (and the host's parameter-gradient
// squared norm, for global clipping). Without gradients the requests are eval-mode (hosts keep
// nothing). Single-threaded: used by the party's trainer thread only.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "common/hash.h"
#include "common/model_config.h"
#include "model/expert.h"
#include "party/expert_link.h"

namespace pcmoe::party {

// Where each expert lives: host[i][e] is the party index hosting expert e of moe_layers[i].
struct Placement {
  std::vector<int> moe_layers;
  std::vector<std::vector<uint32_t>> host;
  uint32_t self = 0;
  uint32_t n_parties = 1;

  // Round-robin: expert e on party e mod n (DESIGN.md).
  static Placement round_robin(const ModelConfig& cfg, uint32_t n_parties, uint32_t self);
  uint32_t host_of(int layer, int expert) const;
  bool hosted_here(int layer, int expert) const { return host_of(layer, expert) == self; }
};

struct DispatchOptions {
  std::string self_id;
  torch::Device device = torch::kCPU;
  DType wire_dtype = DType::f32;
  double row_noise_std = 0.0;
  std::vector<int> local_only_layers;
  uint64_t shuffle_seed = 0;  // private: draws the row permutations and the noise
  int busy_retry_ms = 30000;  // a host answering `busy` (memory) is asked again for this long
  int max_request_rows = 0;   // > 0: a host's rows of a layer go in requests of about this many
                              // rows (one expert's rows are never split); 0: one request per host
};

struct DispatchStats {
  uint64_t requests = 0;
  uint64_t busy_retries = 0;
  uint64_t rows_sent = 0;
  uint64_t rows_local = 0;
  double wait_ms = 0;       // time blocked on host replies (forward and backward)
  double serialize_ms = 0;  // rows/gradients to wire tensors and replies back to the device
};

class FederatedDispatcher : public model::ExpertDispatcher {
 public:
  FederatedDispatcher(const ModelConfig& cfg, model::ExpertShard& local, Placement placement,
                      ExpertLink& link, DispatchOptions options);
  ~FederatedDispatcher() override;

  // Starts a training or evaluation step at global step `step`: clears the per-step state.
  void begin_step(int64_t step);
  torch::Tensor dispatch(int layer, const torch::Tensor& x_sorted, const torch::Tensor& expert_sorted,
                         const std::vector<int64_t>& counts) override;
  torch::Tensor available_mask(int layer) override;

  // Marks parties alive or lost (index = party index); experts of lost parties are masked.
  void set_alive(const std::vector<bool>& alive);
  // Hosts called with train-mode requests since begin_step (they need step_end or step_abort).
  const std::set<uint32_t>& hosts_called() const { return hosts_called_; }
  // Sum of the hosts' parameter-gradient squared norms reported in backward replies.
  double remote_grad_sq() const { return remote_grad_sq_; }
  const DispatchStats& stats() const { return stats_; }
  const Placement& placement() const { return placement_; }

  // ---- used by RemoteCall (autograd) ----
  struct Call {
    int layer = 0;
    std::vector<uint32_t> hosts;
    std::vector<uint64_t> request_ids;
    std::vector<int64_t> rows;
    std::vector<proto::ExpertForward> requests;  // kept to ask again after a `busy`
    torch::Device device = torch::kCPU;
  };
  torch::Tensor wait_forward(const Call& call, torch::ScalarType dtype);
  torch::Tensor run_backward(const Call& call, const torch::Tensor& grad);

 private:
  // Waits for a host's reply (the time counts as waiting in stats_).
  proto::Message timed_wait(uint32_t host, proto::MsgType expect, uint64_t request_id);
  [[noreturn]] static void refused(uint32_t host, uint64_t request_id, const proto::ErrorMsg& err);
  // timed_wait, and an error reply thrown as HostError.
  proto::Message expect_reply(uint32_t host, proto::MsgType expect, uint64_t request_id);

  ModelConfig cfg_;
  model::ExpertShard& local_;
  Placement placement_;
  ExpertLink& link_;
  DispatchOptions opt_;
  Rng rng_;
  at::Generator noise_gen_;
  std::vector<bool> alive_;
  std::vector<torch::Tensor> masks_;  // per MoE layer index, on device (cached)
  int64_t step_ = 0;
  uint64_t next_request_ = 1;
  std::set<uint32_t> hosts_called_;
  double remote_grad_sq_ = 0;
  std::vector<std::shared_ptr<Call>> calls_;  // kept alive until the next begin_step
  DispatchStats stats_;
};

}  // namespace pcmoe::party
