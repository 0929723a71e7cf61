// Owns the host side of the expert protocol: answers expert_forward / expert_backward /
// step_end / step_abort for the experts this party hosts. A train-mode forward keeps what
// backward needs (the input leaf and the output) keyed by request id; backward accumulates the
// experts' parameter gradients and returns input gradients; step_end applies the experts'
// optimizer for exactly the gradients of that step (scaled by the requester's clip scale) and
// drops the stash; eval-mode forwards keep nothing. One requester may hold an open step at a
// time (turns are sequential); a stale one is aborted after stale_ms, the one of a party the hub
// declared lost at once. Concurrent rounds (set_concurrent; PROTOCOL.md 9.6): every requester of
// the round the hub opened (open_round) is served at once, kept rows keyed by (requester, request
// id); every backward adds to the experts' gradients; step_end is only acknowledged; round_norm
// reports the squared norm of the round's summed gradients and closes the round to new requests;
// round_commit applies them in one optimizer step per expert (times the hub's scale) or drops them. Rows
// whose expert outputs or gradients are not finite are refused (non_finite), so that no requester can poison
// the shared experts. A request is launched (its device work queued, results copied to pinned memory
// without waiting) and completed (waited for, checked, answered) in two calls, so that the expert
// service launches the next request while the device runs this one; a step_end (and a round's
// norm) first waits until every launched request is completed, so gradients found not finite are
// dropped before any optimizer step could take them. Thread-safety: launch(), complete() and
// handle() may be called from several server threads; parameter updates take the shard mutex
// exclusively, computation takes it shared (the party's trainer does the same). None throws:
// every failure becomes an ErrorMsg reply with a reason.
#pragma once

#include <torch/torch.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>
#include <string>

#include "common/capture_file.h"
#include "common/error.h"
#include "common/model_config.h"
#include "model/device_timer.h"
#include "model/expert.h"
#include "model/optim.h"
#include "party/wire.h"
#include "proto/messages.h"

namespace pcmoe::party {

struct HostOptions {
  std::string self_id;
  torch::Device device = torch::kCPU;
  bool bf16 = false;      // autocast expert compute on CUDA
  int stale_ms = 120000;  // an open step untouched this long may be aborted by another requester
  // Memory for rows kept for backward; 0 = unlimited. Past it a train forward keeps only its
  // input rows and recomputes the experts in backward; when even those do not fit: `busy`.
  uint64_t max_stash_bytes = 0;
  // Audits only (audit.capture received): every admitted train forward of the steps s with
  // s % capture_every == 0 is recorded as received (requester, step, layer, rid, rows, ids).
  std::shared_ptr<CaptureWriter> received_capture;
  int capture_every = 1;
  int64_t self_index = -1;
};

struct HostStats {
  uint64_t requests = 0;
  uint64_t errors = 0;
  uint64_t rows_forward = 0;
  uint64_t rows_backward = 0;
  uint64_t steps_applied = 0;
  double compute_ms = 0;
  uint64_t stash_bytes = 0;
  uint64_t recomputed = 0;   // requests served in recompute mode (memory limit)
  uint64_t busy = 0;         // train forwards refused for memory
  uint64_t out_of_turn = 0;  // train forwards refused: the requester held no turn for that step
};

class ExpertHost {
 public:
  ExpertHost(const ModelConfig& model, const TrainConfig& train, model::ExpertShard& shard, model::AdamW& opt,
             std::shared_mutex& shard_mu, HostOptions options);

  // The parties allowed to send requests (from the hub's directory).
  void set_known_parties(std::set<std::string> ids);
  // The parties the hub declared lost (from the directory): an open step of theirs no longer
  // makes other requesters wait (see stale_ms). Takes only the host's own lock: safe from the
  // trainer's thread in the middle of a step.
  void set_lost_parties(std::set<std::string> ids);
  // The hub's latest turn notice (protocol 1.2: who holds the turn, or every participant of the
  // open round, and for which global steps), read for every train forward: only a holder's forward
  // of a step of its turn is admitted; any other is answered `busy` (a holder whose request
  // overtook the notice gets it on its retry) and its step is never opened, so it cannot step these
  // experts nor hold them. An open step whose requester no longer holds the turn is dropped when
  // another requester comes. Unset (a hub before 1.2, pcmoe-central, tests): members are admitted.
  using TurnProbe = std::function<std::optional<proto::TurnNotice>()>;
  void set_turn_probe(TurnProbe probe);
  // Each member's party index (from the directory), to match requesters with turn holders.
  void set_party_indices(std::map<std::string, uint32_t> index_of);
  // Answers one request from `sender` (the authenticated party id of the connection, or "" when
  // the transport cannot authenticate; then the request's own requester field is used), taken off
  // the socket at `received`. Forward and backward replies carry the host's timeline
  // (proto::TimelineIndex) but for kTlRepliedNs, which stamp_replied() sets just before sending.
  // A request with its tensor (a forward's rows, a backward's gradients) already staged for the
  // device: the expert service stages the next request on its I/O thread while this one computes.
  struct Prepared {
    proto::Message message;
    std::optional<Staged> staged;
    double stage_ms = 0;
  };
  // Stages a request's tensor (no locks, no state: callable from any thread).
  Prepared prepare(proto::Message request) const;
  // A request whose device work is queued but may still run (launch()); complete() waits for it
  // and returns the reply. The expert service launches the next request while this one's device
  // work and copies run, and completes requests on a thread of their own, in launch order.
  struct Launched;
  // Checks, admits and launches one request from `sender` (the authenticated party id of the
  // connection, or "": the request's own requester field), taken off the socket at `received`:
  // a forward's experts, or a backward pass, and the copies of the results to pinned host memory,
  // without waiting for the device. `conn`: the connection the request came on (the expert
  // service's peer routing id; "" when called directly): without authentication it tells
  // requesters' equal request ids apart. Never throws.
  std::unique_ptr<Launched> launch(const std::string& sender, const Prepared& request,
                                   std::chrono::steady_clock::time_point received, const std::string& conn);
  // Waits for a launched request's device work; its reply (refused if its results are not finite).
  // Never throws. Callable from another thread than launch()'s.
  proto::Message complete(std::unique_ptr<Launched> launched);
  // launch() then complete().
  proto::Message handle(const std::string& sender, const Prepared& request,
                        std::chrono::steady_clock::time_point received = std::chrono::steady_clock::now(),
                        const std::string& conn = "");
  proto::Message handle(const std::string& sender, const proto::Message& request,
                        std::chrono::steady_clock::time_point received = std::chrono::steady_clock::now()) {
    return handle(sender, prepare(request), received);
  }
  // Sets a reply's kTlRepliedNs to now (no-op for replies without a timeline).
  static void stamp_replied(proto::Message& reply);
  HostStats stats() const;
  // Memory for rows kept for backward (see HostOptions::max_stash_bytes). Thread-safe.
  void set_max_stash_bytes(uint64_t bytes);

  // ---- concurrent rounds (hub.schedule: concurrent); called from the party's main thread ----
  void set_concurrent(bool on);
  bool concurrent() const;
  // The hub opened round `step` (this party's own turn of it): train forwards of that step are
  // admitted from every requester; earlier ones are refused (out_of_order), later ones `busy`.
  void open_round(int64_t step);
  // Closes round `step` to requests and reports its summed expert gradients' squared norm.
  proto::RoundNorm round_norm(int64_t step);
  // Applies (one AdamW step per expert with gradients, at lr_at(step), times `scale`) or drops
  // the round's gradients; the kept rows of the round go. Idempotent for a round already ended.
  proto::RoundCommitAck round_commit(const proto::RoundCommit& c);
  // The hub's round message for this host (turn: open_round; round_close: round_norm;
  // round_commit: round_commit) and what goes back to the hub, if anything.
  std::optional<proto::Message> on_round_message(const proto::Message& m);

 private:
  // Kept rows are keyed by where they came from (the authenticated sender, the connection, or the
  // requester field) and the requester's request id.
  using Key = std::pair<std::string, uint64_t>;
  struct Entry {
    std::string requester;
    int64_t step = 0;
    int layer = 0;
    torch::Tensor x;               // leaf with requires_grad
    torch::Tensor y;               // undefined in recompute mode
    torch::Tensor ids;             // recompute mode: the expert ids on the device
    std::vector<int64_t> experts;  // distinct expert ids of the request
    uint64_t bytes = 0;
  };

  // Where a request's time went (the reply's timeline).
  struct RequestTimes {
    double stage_ms = 0, h2d_ms = 0, compute_ms = 0, d2h_ms = 0, check_ms = 0;
    // h2d, compute and d2h from a request's four marks (waits for the last).
    void read_device(model::DeviceTimer& t) {
      const auto iv = t.intervals_ms();
      h2d_ms = iv[0];
      compute_ms = iv[1];
      d2h_ms = iv[2];
    }
  };
  // A reply's host timeline (protocol 1.1 'tl'): received (steady ns), replied (set when it is
  // sent), and the request's phases in microseconds.
  static std::vector<uint64_t> host_timeline(std::chrono::steady_clock::time_point received,
                                             const RequestTimes& tm);
  // audit.capture received: one admitted train forward as this host got it.
  void capture_received(const std::string& requester, const proto::ExpertForward& req, const torch::Tensor& x,
                        const torch::Tensor& ids) const;
  // The request's layer, shapes and experts (ids and distinct ids filled); an error reply if bad.
  std::optional<proto::Message> check_forward(const proto::ExpertForward& req, torch::Tensor& ids,
                                              std::vector<int64_t>& distinct) const;
  // A train forward's place in the open step and in the memory for kept rows (recompute set
  // when only the input rows fit); an error reply (busy, out_of_order) if refused.
  std::optional<proto::Message> admit(const std::string& requester, const Key& key,
                                      const proto::ExpertForward& req, uint64_t full_bytes,
                                      uint64_t min_bytes, bool& recompute);
  // Why `requester` may not train step `step` here now ("" if it may): the turn notice's rule.
  std::string turn_refusal(const std::string& requester, int64_t step) const;
  // Why round `step` admits no train request now ("" if it does; busy: not open here yet).
  std::string round_refusal(int64_t step, bool& busy) const;
  // The kept rows of `key` (an empty origin: the only entry with that id), or end().
  std::map<Key, Entry>::iterator find_entry(const Key& key);
  // Drops the kept rows of `key` (find_entry), if any. Takes mu_ held.
  void erase_entry_locked(const Key& key);
  // Removes one kept entry from the stash (and its bytes from the count) and returns it; every
  // entry: clear_stash_locked(). Take mu_ held.
  Entry take_entry_locked(std::map<Key, Entry>::iterator it);
  void clear_stash_locked();
  // A reply now (errors, eval without device), or the rest of the request once its device work
  // is done (Launched::finish).
  using Finish = std::function<proto::Message(RequestTimes&)>;
  struct Started {
    std::optional<proto::Message> reply;
    Finish finish;
  };
  // What a launched forward / backward still needs once its device work is done.
  struct ForwardDone {
    std::shared_ptr<model::DeviceTimer> timer;  // its last mark follows the copies
    torch::Tensor finite;                       // pinned bool: outputs finite in `wire` (fp8: undefined)
    HostRows outputs;
    Key key;
    DType wire = DType::f32;
    int64_t rows = 0;
    bool train = false;
  };
  struct BackwardDone {
    std::shared_ptr<model::DeviceTimer> timer;
    torch::Tensor finite;  // pinned bool: the input gradients are finite in the wire dtype (fp8: undefined)
    torch::Tensor norm;    // the touched experts' gradient norm (0 in concurrent rounds)
    HostRows grads;
    uint64_t request_id = 0;
    std::string requester;
    int64_t step = 0, rows = 0;
    bool concurrent = false;
  };
  proto::Message finish_forward(const ForwardDone& d, RequestTimes& tm);
  proto::Message finish_backward(const BackwardDone& d, RequestTimes& tm);
  // A launched request's failure (ModelError) as its reply; its kept rows, if any, go.
  proto::Message failed(const Launched& l, const ModelError& e);
  Started forward(const std::string& requester, const std::string& origin, const proto::ExpertForward& req,
                  const Staged& rows, RequestTimes& tm);
  Started backward(const std::string& requester, const std::string& origin, const proto::ExpertBackward& req,
                   const Staged& grads, RequestTimes& tm);
  proto::Message step_end(const std::string& requester, const proto::StepEnd& req);
  proto::Message step_abort(const std::string& requester, const proto::StepAbort& req);
  // Opens (or continues) requester's step; false with `why` if another requester holds one.
  bool open_step(const std::string& requester, int64_t step, std::string& why);
  void drop_open_step_locked(const char* reason);

  ModelConfig model_;
  TrainConfig train_;
  model::ExpertShard& shard_;
  model::AdamW& opt_;
  std::shared_mutex& shard_mu_;
  HostOptions opt_s_;

  mutable std::mutex mu_;  // guards everything below
  std::set<std::string> known_;
  std::set<std::string> lost_;
  TurnProbe turn_probe_;
  std::map<std::string, uint32_t> index_of_;
  std::pair<std::pair<std::string, int64_t>, int> last_out_of_turn_{{"", -1},
                                                                    0};  // (requester, step), refusals
  std::map<Key, Entry> stash_;
  std::string open_requester_;
  int64_t open_step_ = -1;
  std::chrono::steady_clock::time_point open_touched_{};
  std::map<std::string, int64_t> last_ended_;  // requester -> last step ended
  bool concurrent_ = false;
  int64_t round_step_ = -1;    // the open round (-1: none)
  bool round_closed_ = false;  // its norm was reported: no more requests
  int64_t last_round_ = -1;    // the last round committed or dropped
  HostStats stats_;
  int launched_ = 0;                 // launched, not completed (complete() counts down)
  std::condition_variable idle_cv_;  // launched_ reached 0
};

struct ExpertHost::Launched {
  proto::MsgType type = proto::MsgType::expert_forward;
  uint64_t request_id = 0;
  std::string origin;
  std::chrono::steady_clock::time_point received;
  RequestTimes tm;
  double launch_ms = 0;
  std::optional<proto::Message> reply;  // set: nothing left to wait for
  Finish finish;
};

}  // namespace pcmoe::party
