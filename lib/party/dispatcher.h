// Owns the requester side of PC-MoE's remote expert calls: the FederatedDispatcher the party's
// backbone uses at every MoE layer. Rows for the party's own experts are computed locally; for
// each remote host it sends the rows routed to any of that host's experts in requests of at most
// max_request_rows rows (so the host pipelines wire and compute, also for one busy expert) —
// each shuffled with a private permutation, optionally noised, carrying only hidden states and expert
// ids — and all requests are in flight while the local experts compute. With gradients enabled
// the remote results enter autograd through RemoteCall, whose backward sends the output
// gradients to each host and receives the input gradients (and the host's parameter-gradient
// squared norm, for global clipping). Without gradients the requests are eval-mode (hosts keep
// nothing). It owns the whole requester side of a remote step: as the step's train::StepHooks it
// reports the hosts' gradient norm, commits the step (step_end with the clip scale to every host
// called, waiting for every acknowledgement) or aborts it (step_abort). The trainer never talks
// to a link. Single-threaded: the party's trainer thread (and, on CUDA, libtorch's autograd
// thread while the trainer thread is blocked in backward()). Implementation: dispatcher.cpp
// (routing, requests, commit and abort), remote_call.cpp (replies in arrival order, staging,
// backward, the hosts' timelines).
#pragma once

#include <torch/torch.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "common/capture_file.h"
#include "common/hash.h"
#include "common/model_config.h"
#include "model/expert.h"
#include "party/expert_link.h"
#include "party/wire.h"
#include "train/step.h"

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
  double row_clip = 0.0;       // privacy.row_clip: rows sent are clipped to this L2 norm (0 = off)
  double row_noise_std = 0.0;  // privacy.row_noise_std (model::add_row_noise)
  std::vector<int> local_only_layers;
  uint64_t shuffle_seed = 0;  // private: draws the row permutations and the noise
  int busy_retry_ms = 30000;  // a host answering `busy` (memory) is asked again for this long
  int max_request_rows = 0;   // > 0: a host's rows of a layer go in requests of at most this many
                              // rows (an expert with more gets several of its own); 0: one per host
  // Audits only (audit.capture sent): the token id behind each row of every train request of the
  // steps s with s % capture_every == 0 is recorded here, locally (never sent).
  std::shared_ptr<CaptureWriter> sent_capture;
  int capture_every = 1;
};

// Time of one phase of remote calls on the requester (wall clock of its thread).
struct PhaseTimes {
  double gather_ms = 0;  // rows / gradients gathered, converted and copied to the host (blocking)
  double send_ms = 0;    // requests built and handed to the sockets
  double wait_ms = 0;    // blocked on host replies
  double stage_ms = 0;   // replies copied into staging memory as they arrive
  double h2d_ms = 0;     // the staged replies to the device (launching; the copy itself is async on CUDA)
  double serialize_ms() const { return gather_ms + stage_ms + h2d_ms; }
};

// The requests of one phase as the hosts saw them (their replies' timelines, protocol 1.1):
// sums over the requests answered with one. out_ms and back_ms need the host's clock to be the
// requester's (the same machine: steady clocks agree); they are summed over `same_clock` only.
struct RemoteTimes {
  uint64_t requests = 0;    // replies with a timeline
  uint64_t same_clock = 0;  // of them, with comparable clocks
  double out_ms = 0;        // sent -> the host took it off its socket (wire, then the host's queue)
  double host_stage_ms = 0, host_h2d_ms = 0, host_compute_ms = 0, host_d2h_ms = 0, host_check_ms = 0;
  double host_other_ms = 0;       // the rest of the host's handling (decode, bookkeeping, locks)
  double back_ms = 0;             // the host handed the reply to its socket -> the requester took it
  double requester_stage_ms = 0;  // replies staged on the link's threads (not the requester's)
};

struct DispatchStats {
  uint64_t requests = 0;
  uint64_t busy_retries = 0;
  uint64_t rows_sent = 0;
  uint64_t rows_local = 0;
  PhaseTimes forward;   // expert_forward (training and evaluation)
  PhaseTimes backward;  // expert_backward
  PhaseTimes commit;    // step_end / step_abort acknowledgements (wait_ms)
  RemoteTimes remote_forward, remote_backward;
  double wait_ms() const { return forward.wait_ms + backward.wait_ms + commit.wait_ms; }
  double serialize_ms() const { return forward.serialize_ms() + backward.serialize_ms(); }
};

class FederatedDispatcher : public model::ExpertDispatcher, public train::StepHooks {
 public:
  FederatedDispatcher(const ModelConfig& cfg, model::ExpertShard& local, Placement placement,
                      ExpertLink& link, DispatchOptions options);
  ~FederatedDispatcher() override;

  // Starts a training or evaluation step at global step `step`: clears the per-step state.
  void begin_step(int64_t step);
  torch::Tensor dispatch(int layer, const torch::Tensor& x_sorted, const torch::Tensor& expert_sorted,
                         const std::vector<int64_t>& counts) override;
  torch::Tensor available_mask(int layer) override;
  // Audit hooks: kept only while a sent capture is on (what send_requests records).
  void note_inputs(const torch::Tensor& inputs) override;
  void note_rows(int layer, const torch::Tensor& positions) override;

  // Concurrent rounds: the hub's round commit applies the experts' gradients, so commit() sends
  // nothing and remote_grad_sq() is 0 (the backbone is clipped alone; PROTOCOL.md 9.6).
  void set_concurrent(bool on) { concurrent_ = on; }
  // Marks parties alive or lost (index = party index); experts of lost parties are masked.
  void set_alive(const std::vector<bool>& alive);
  // Hosts called with train-mode requests since begin_step (they need step_end or step_abort).
  const std::set<uint32_t>& hosts_called() const { return hosts_called_; }

  // ---- train::StepHooks: the remote part of the step begun by begin_step ----
  // Sum of the hosts' parameter-gradient squared norms reported in backward replies.
  double remote_grad_sq() const override { return concurrent_ ? 0.0 : remote_grad_sq_; }
  // step_end with `clip_scale` to every host called, then every acknowledgement. Throws HostError
  // (a host timed out or was lost) or TransportError (a host refused).
  void commit(int64_t step, double clip_scale) override;
  // step_abort to every host called, waiting for each acknowledgement; failures are logged.
  void abort(int64_t step, const std::string& why) override;

  const DispatchStats& stats() const { return stats_; }
  const Placement& placement() const { return placement_; }
  // Bytes on the links to the hosts since the start (training and evaluation).
  uint64_t bytes_sent() const { return link_.bytes_sent(); }
  uint64_t bytes_received() const { return link_.bytes_received(); }

  // ---- used by RemoteCall (autograd) ----
  // One request's reply as the link's thread saw it (sinks: staged there as it arrived).
  struct Arrival {
    std::atomic<bool> staged{false};
    std::atomic<int64_t> received_ns{0};  // steady clock
    std::atomic<int64_t> stage_ns{0};     // time its staging took on the link's thread
  };
  struct Call : std::enable_shared_from_this<Call> {
    int layer = 0;
    std::vector<uint32_t> hosts;
    std::vector<uint64_t> request_ids;
    std::vector<int64_t> rows;
    std::vector<int64_t> first;   // row offset of each request in the call's rows
    std::vector<int> norm_group;  // of each request: RouteRequest::norm_group
    std::vector<uint32_t> lanes;  // of each request: its connection (forward, retries, backward)
    std::vector<proto::ExpertForward> requests;                  // kept to ask again after a `busy`
    std::vector<std::chrono::steady_clock::time_point> sent_at;  // of each request, this phase
    std::vector<std::shared_ptr<Arrival>> arrival;               // of each request, this phase
    std::shared_ptr<ReplyStager> stager;                         // this phase's replies
    torch::Device device = torch::kCPU;
  };
  torch::Tensor wait_forward(Call& call, torch::ScalarType dtype);
  torch::Tensor run_backward(Call& call, const torch::Tensor& grad);

 private:
  // Where the sorted rows of one MoE layer go.
  struct RouteRequest {
    std::vector<int64_t> rows;  // sorted-row indices
    int norm_group = -1;        // >= 0: one of an expert's own requests (see plan_routes)
  };
  struct RoutePlan {
    std::vector<int64_t> local_rows;                       // sorted-row indices for this party's experts
    std::vector<int64_t> local_counts;                     // per expert
    std::map<uint32_t, std::vector<RouteRequest>> remote;  // host -> requests
    std::vector<int32_t> expert_of;                        // expert of each sorted row
    torch::Tensor remote_idx;                              // the remote rows in the order they were sent
  };
  RoutePlan plan_routes(int layer, int64_t n_rows, const std::vector<int64_t>& counts) const;
  torch::Tensor send_requests(int layer, bool train, const torch::Tensor& x_sorted, RoutePlan& plan,
                              const std::shared_ptr<Call>& call);
  // audit.capture sent: the token ids behind `rows` (sorted-row indices) of request `rid` to `host`.
  void capture_sent(uint32_t host, int layer, uint64_t rid, const std::vector<int64_t>& rows);
  bool capturing(bool train) const { return train && opt_.sent_capture && step_ % opt_.capture_every == 0; }
  // Asks the link to stage the reply to request i of `call` (a forward's or a backward's) on its
  // own thread as soon as it arrives (remote_call.cpp).
  void arm(const std::shared_ptr<Call>& call, size_t i, proto::MsgType expect);
  // Waits for a host's reply (the time counts as waiting in `phase`).
  proto::Message timed_wait(PhaseTimes& phase, uint32_t host, proto::MsgType expect, uint64_t request_id);
  [[noreturn]] static void refused(uint32_t host, uint64_t request_id, const proto::ErrorMsg& err);
  // ---- remote_call.cpp ----
  // The replies of every request of `call` in the order they arrive, each handed to `take(i, reply)`
  // (a forward answered `busy` is sent again, with back-off, up to busy_retry_ms); an error reply
  // is thrown as HostError, a timeout or lost host as HostError from the link.
  void collect(Call& call, proto::MsgType expect, PhaseTimes& phase,
               const std::function<void(size_t, const proto::Message&)>& take);
  // Adds a reply's host timeline to `rt` (request i of `call`, taken off the socket at `received`).
  static void note_timeline(RemoteTimes& rt, const Call& call, size_t i, const std::vector<uint64_t>& tl,
                            std::chrono::steady_clock::time_point received);
  // A reply's shape, timeline and (unless its link already did) staging.
  void take_reply(Call& call, size_t i, const proto::WireTensor& t, const std::vector<uint64_t>& timeline,
                  PhaseTimes& phase, RemoteTimes& rt, const char* what);

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
  bool concurrent_ = false;
  std::vector<std::shared_ptr<Call>> calls_;  // kept alive until the next begin_step
  DispatchStats stats_;
  torch::Tensor audit_inputs_;                    // [B*T] int64 on the CPU (sent capture only)
  std::map<int, torch::Tensor> audit_positions_;  // per layer: positions of its sorted rows (CPU)
};

}  // namespace pcmoe::party
