// Owns a party's side of the hub protocol, socket-free (the mirror of hub::HubState): joining
// (hello until the welcome), rejoining after unknown_party, turns and their steps, the directory
// and the global expert load, checkpoint and snapshot requests, the end sequence (final
// evaluation, pool, export, bye), the release, signals and the loss of the hub. It is fed with the
// hub's messages (on_message), the passage of time (on_tick) and the outcomes of the work it asked
// for (step_done, checkpoint_done, finish_prepared, exported); each call returns the actions for
// the daemon: messages to send and work to do, in order. Hub messages that arrive while a step
// runs are held and applied at the step boundary, so a directory or load update never changes the
// dispatcher in the middle of a step; a turn, stop, checkpoint or snapshot request waits for the
// end of the open turn. Logs its decisions (party.* events); never throws.
// States (heartbeat_state()): connecting -> serving <-> training -> finishing -> done.
// Not thread-safe: the daemon's main thread drives it.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "common/party_config.h"
#include "proto/messages.h"

namespace pcmoe::party {

struct SessionOptions {
  std::string hub_endpoint;          // for messages
  std::string id_origin;             // where party.id was set ("configs/party-a.yaml:3"), for messages
  std::string key_file;              // party.curve.secret_key_file ("" without CURVE)
  std::string public_key;            // this party's CURVE public key ("" without CURVE)
  std::string hub_public_key;        // the hub's, as configured ("" without CURVE), for messages
  std::vector<uint32_t> moe_layers;  // this party's model: the welcome must match
  uint32_t n_experts = 0;
  int hub_timeout_ms = 30000;  // no welcome, or nothing heard, for this long: the hub is lost
  int heartbeat_ms = 1000;
  int hello_retry_ms = 2000;     // hello again while no welcome came
  int rejoin_min_ms = 1000;      // at most one rejoining hello per this
  int unanswered_ms = 5000;      // no heartbeat answer for this long: hello again (same session)
  int pool_timeout_ms = 60000;   // the end: wait this long for the hub's pool
  int64_t checkpoint_every = 0;  // steps; 0: only when the hub asks and at the end
  bool save_on_exit = true;      // the end: checkpoint, pool, exported model
};

// ---- actions (what the daemon does) ----
namespace act {
struct Send {  // a message to the hub
  proto::Message message;
  int timeout_ms = 1000;
};
struct Join {  // the first welcome: build the trainer from it, restore; then resumed_at()
  proto::Welcome welcome;
};
struct Serve {  // install the expert host (after resumed_at, or after SeedExperts)
};
struct SeedExperts {  // a party that joined mid-run without a checkpoint: its experts from this pool
  proto::Pool pool;   // step -1: none (the experts keep their initial weights)
};
struct ApplyDirectory {
  std::vector<proto::PartyEntry> directory;
};
struct UpdateLoad {  // the hub's global expert load (balance bias)
  std::vector<std::vector<double>> window;
};
struct Checkpoint {  // write the checkpoint; for the hub: then checkpoint_done(step, ...)
  std::optional<int64_t> hub_step;
};
struct SendSnapshot {  // the shard's experts as a Snapshot message
  uint64_t snapshot_id = 0;
  int64_t step = 0;
};
struct PrepareFinish {  // final evaluation and checkpoint; then finish_prepared()
  std::string reason;
};
struct Export {  // write the exported model with this pool; then exported()
  proto::Pool pool;
};
struct Finished {  // the end's summary (party.done); a bye follows
  std::string reason;
  bool exported = false;
};
struct HostRound {  // concurrent rounds: hand the hub's turn / round_close / round_commit to the
                    // expert host (ExpertHost::on_round_message) and send its answer to the hub
  proto::Message message;
};
struct Exit {  // leave the main loop with this exit code
  int code = 0;
};
enum class FailKind { config, transport, protocol };
struct Fail {  // a fatal error: the daemon throws it (ConfigError / TransportError / ProtocolError)
  FailKind kind = FailKind::transport;
  std::string message;
};
}  // namespace act

using Action = std::variant<act::Send, act::Join, act::Serve, act::SeedExperts, act::ApplyDirectory,
                            act::UpdateLoad, act::Checkpoint, act::SendSnapshot, act::PrepareFinish,
                            act::Export, act::Finished, act::HostRound, act::Exit, act::Fail>;

// One step the daemon should run now.
struct StepOrder {
  int64_t step = 0;
  uint64_t turn_id = 0;
};

// The session's options and this party's hello, from its configuration.
SessionOptions session_options(const PartyConfig& cfg, const std::string& public_key);
proto::Hello hello_for(const PartyConfig& cfg, const std::string& expert_endpoint,
                       const std::string& public_key);

class PartySession {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;

  // `hello`: this party's hello (resume_step is filled in here).
  PartySession(SessionOptions options, proto::Hello hello, TimePoint now);

  // The first hello (resume_step: the step of the checkpoint found, 0 if none).
  std::vector<Action> start(int64_t resume_step, TimePoint now);
  // A message from the hub that arrived at `at`.
  std::vector<Action> on_message(const proto::Message& m, TimePoint at);
  // Time passes: hello retries, the join timeout, the loss of the hub, the pool timeout.
  // `last_heard`: when the hub was last heard from; `key_refused`: the hub refused our CURVE key;
  // `server_key_suspect`: our CURVE handshakes with the hub fail without a verdict (its key is wrong).
  std::vector<Action> on_tick(TimePoint now, TimePoint last_heard, bool key_refused = false,
                              bool server_key_suspect = false);
  // SIGINT/SIGTERM: end the open turn, checkpoint, bye, exit (before the welcome: fail).
  std::vector<Action> on_signal(TimePoint now);

  // ---- the work it asked for ----
  // After act::Join: the trainer restored the checkpoint of global step `step` (0: none). Serve at
  // once; or, when the federation is past step 0 and there was no checkpoint, first ask the hub for
  // its pool (the experts this party hosts come from it: act::SeedExperts, then act::Serve).
  std::vector<Action> resumed_at(int64_t step, TimePoint now);
  // The next step of the open turn, when one is due (marks it running); else nullopt.
  std::optional<StepOrder> begin_step();
  // The running step finished (`report`) or failed (`reason`; `suspect`: a host that failed).
  std::vector<Action> step_done(const proto::StepReport& report, TimePoint now);
  std::vector<Action> step_failed(const std::string& reason, const std::string& suspect, TimePoint now);
  std::vector<Action> checkpoint_done(int64_t step, bool ok, const std::string& path,
                                      const std::string& reason);
  std::vector<Action> finish_prepared(TimePoint now);
  std::vector<Action> exported(bool ok, TimePoint now);

  // ---- observers ----
  bool joined() const { return joined_; }
  bool seeding() const { return seed_deadline_.has_value(); }
  uint64_t session() const { return session_; }
  bool step_running() const { return running_; }
  bool finished() const { return finished_; }  // bye sent
  const std::string& heartbeat_state() const { return state_; }
  int64_t heartbeat_step() const { return last_step_ + 1; }
  int64_t last_step() const { return last_step_; }
  int64_t global_step() const { return global_step_; }
  uint32_t index() const { return index_; }
  bool concurrent() const { return concurrent_; }  // the welcome's schedule

 private:
  struct OpenTurn {
    proto::Turn turn;
    uint32_t done = 0;
  };
  void handle(const proto::Message& m, TimePoint at);
  void on_welcome(const proto::Welcome& w, TimePoint at);
  void on_pool(const proto::Pool& p);
  void end_seeding(const proto::Pool& p);
  void on_reject(const proto::Reject& r);
  void on_stop(const proto::Stop& s, TimePoint at);
  void on_error(const proto::ErrorMsg& e, TimePoint at);
  void rejoin(const std::string& why, TimePoint now);
  void end_turn(bool ok, const std::string& reason, const std::string& suspect);
  void finalize(bool exported);
  // Whether a hub message may be handled now (no step running; a turn-scoped one: no open turn).
  bool applicable_now(const proto::Message& m) const;
  void release_held(TimePoint now);
  void fail(act::FailKind kind, std::string message);
  std::vector<Action> take();

  SessionOptions opt_;
  proto::Hello hello_;
  TimePoint started_;
  TimePoint last_hello_{};
  TimePoint last_rejoin_{};
  bool joined_ = false;
  uint64_t session_ = 0;                    // the welcome's session token, sent with every later hello
  TimePoint last_answer_{};                 // the hub's last heartbeat (or welcome)
  int64_t welcome_step_ = 0;                // the global step of the first welcome
  std::optional<TimePoint> seed_deadline_;  // waiting for the pool to seed the experts
  uint32_t index_ = 0;
  std::vector<std::vector<uint32_t>> placement_;
  std::string state_ = "connecting";
  int64_t last_step_ = -1;
  int64_t global_step_ = 0;
  int64_t steps_since_ckpt_ = 0;
  std::optional<OpenTurn> turn_;
  bool running_ = false;
  std::deque<std::pair<proto::Message, TimePoint>> held_;  // arrived during a step
  bool finishing_ = false;
  std::string finish_reason_;
  std::optional<TimePoint> pool_deadline_;
  bool finished_ = false;
  bool concurrent_ = false;
  bool checkpoint_due_ = false;  // concurrent: the periodic checkpoint waits for the round's commit
  bool released_ = false;
  bool exited_ = false;
  std::vector<Action> out_;
};

}  // namespace pcmoe::party
