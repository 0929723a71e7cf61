// Owns the hub's state machine, socket-free: membership and liveness, the start condition, turns,
// global router statistics, control, expert-pool snapshot rounds and the end sequence. Fed with
// decoded messages (on_message), rejected ones (on_decode_error) and the passage of time
// (on_tick); each returns the messages to send. Side effects on disk go through HubStore.
// States (Status.state): waiting -> training (<-> paused) -> stopping -> finished.
// The hub accepts exactly hello, step_report, turn_done, heartbeat, status_request, control,
// checkpoint_done, snapshot, pool_request, bye and error; every other type (the activation path and
// the hub-to-party types) is refused with unknown_type and changes nothing. Input never throws:
// anything unacceptable is an ErrorMsg (or Reject) reply plus one rate-limited log line.
// Not thread-safe: one thread (HubServer's loop, or a test) drives it. Not copyable or movable.
// Snapshot rounds and checkpoint requests go out between turns only, and no turn is granted until
// every live party answered them (or they timed out): a pool or a federation checkpoint is then
// taken at one global step.
// Implementation: hub_state.cpp (dispatch, status, ticks), hub_membership.cpp (hello, liveness,
// bye), hub_turns.cpp (turns, step reports), hub_control.cpp (control, checkpoints, the
// between-turns barrier), hub_snapshots.cpp (snapshot rounds), hub_end.cpp (the end sequence).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/hub_config.h"
#include "hub/hub_store.h"
#include "hub/hub_view.h"
#include "hub/load_stats.h"
#include "hub/log_limiter.h"
#include "hub/pool.h"
#include "hub/pool_layout.h"
#include "hub/registry.h"
#include "hub/rounds.h"
#include "hub/saved_state.h"
#include "hub/scheduler.h"
#include "hub/types.h"
#include "proto/decode_error.h"
#include "proto/messages.h"

namespace pcmoe::hub {

struct HubTimeouts {
  Millis snapshot{30000};        // a snapshot round (periodic or final) gives up after this
  Millis checkpoint{60000};      // turns wait this long at most for every checkpoint_done
  Millis bye{300000};            // after Stop: wait this long for every live party's bye
  Millis stats_interval{10000};  // period of the hub.stats log line
};

struct HubOptions {
  HubTimeouts timeouts;
  bool curve = false;  // the socket authenticates peers: curve_key is meaningful
  // With CURVE: operator public key -> operator id. Only these keys may send Control and
  // StatusRequest (hub.operators and hub.ctl_key_file; never a party's key or the hub's own).
  std::map<std::string, std::string> operators;
};

enum class Phase { waiting, training, stopping, finished };

class HubState {
 public:
  HubState(const HubConfig& cfg, HubStore& store, std::string run_id, TimePoint now, HubOptions options = {});
  HubState(const HubState&) = delete;
  HubState& operator=(const HubState&) = delete;

  // True for the message types the hub handles (the privacy allow-list above).
  static bool accepts(proto::MsgType type);

  // `peer`: ROUTER routing id; `curve_key`: the connection's authenticated key ("" without CURVE).
  std::vector<Outgoing> on_message(const std::string& peer, const std::string& curve_key,
                                   const proto::Message& m, TimePoint now);
  // A message that did not decode: the ErrorMsg reply (and a rate-limited log line).
  std::vector<Outgoing> on_decode_error(const std::string& peer, const proto::DecodeError& e, TimePoint now);
  // Liveness, snapshot and bye timeouts, the end sequence, periodic stats. Call every ~50 ms.
  std::vector<Outgoing> on_tick(TimePoint now);
  // Finish early (SIGINT/SIGTERM or Control stop): the same end sequence as reaching total_steps.
  std::vector<Outgoing> request_stop(const std::string& reason, TimePoint now);
  // Writes hub_state.json; false (and one error line) if that failed.
  bool save_state(TimePoint now);
  // hub.resume: continues the run saved in `saved` (its run id, global step, turn schedule, running
  // expert load, snapshot counter and per-party totals) and, when it belongs to that run and fits
  // the model, `pool` (pool.pcmoe; nullptr if absent; otherwise the next snapshot round rebuilds
  // it). Call once, before any message. Throws ConfigError naming the file when the saved run
  // cannot be continued with this configuration (another model hash; already at train.steps).
  // Implementation: hub_resume.cpp.
  void restore(const SavedHubState& saved, std::shared_ptr<const TensorFile> pool);
  // Socket counters for hub.stats.
  void note_transport(uint64_t bytes_in, uint64_t bytes_out, uint64_t send_failures);

  // ---- observers ----
  Phase phase() const { return phase_; }
  bool paused() const { return paused_; }
  bool finished() const { return phase_ == Phase::finished; }
  std::string_view state_name() const;
  int64_t step() const { return step_; }
  const std::string& run_id() const { return run_id_; }
  const std::string& model_hash() const { return model_hash_; }
  const std::string& stop_reason() const { return stop_reason_; }
  const Registry& registry() const { return registry_; }
  const TurnScheduler& scheduler() const { return scheduler_; }
  const ExpertLoadStats& load() const { return load_; }
  const ExpertPool& pool() const { return pool_; }
  const PoolLayout& layout() const { return layout_; }
  std::optional<uint64_t> snapshot_round() const;
  uint64_t bad_messages() const { return bad_messages_; }
  proto::Status status(TimePoint now, bool include_load = true) const;
  // The status with the load, per-party step times and the hub's counters (hub_view.cpp).
  HubView view(TimePoint now) const;
  std::string state_json(TimePoint now) const;

 private:
  enum class StopStage { none, draining, final_snapshot, awaiting_byes, done };

  // ---- hub_state.cpp ----
  void dispatch(PartyRecord* self, const std::string& peer, const std::string& curve_key,
                const proto::Message& m, TimePoint now);
  void send(const std::string& peer, proto::Message m);
  void broadcast(const proto::Message& m, const PartyRecord* except = nullptr);
  void refuse(const std::string& peer, proto::MsgType type, proto::ErrorCode code, const std::string& reason,
              TimePoint now);
  void on_heartbeat(PartyRecord& p, const std::string& peer, const proto::Heartbeat& h);
  void on_party_error(const PartyRecord* p, const std::string& peer, const proto::ErrorMsg& e, TimePoint now);
  void log_stats(TimePoint now);
  std::vector<Outgoing> take();
  // ---- hub_membership.cpp ----
  void on_hello(const std::string& peer, const std::string& curve_key, const proto::Hello& h, TimePoint now);
  // The same process again (its hello carries the session token of its registration): on this
  // connection or a new one; nothing it was doing is dropped.
  void resume_session(PartyRecord& p, const std::string& peer, const std::string& curve_key, TimePoint now);
  // A new registration (first join, a restart, or a rejoin after being lost).
  void register_party(PartyRecord& p, const std::string& peer, const std::string& curve_key,
                      const proto::Hello& h, TimePoint now);
  void begin_training(TimePoint now);
  // A resumed hub behind a party's own step (it trained steps the saved state does not know):
  // the global step and the schedule move on to it, so those steps are not trained twice.
  void fast_forward(const PartyRecord& p, int64_t to);
  // With CURVE: the operator id of `curve_key` ("" if it is none); without CURVE: "(any)".
  std::string operator_of(const std::string& curve_key) const;
  std::optional<std::pair<proto::ErrorCode, std::string>> hello_problem(const std::string& peer,
                                                                        const std::string& curve_key,
                                                                        const proto::Hello& h, TimePoint now);
  void reject(const std::string& peer, const proto::Hello& h, proto::ErrorCode code,
              const std::string& reason, TimePoint now);
  proto::Welcome welcome_for(const PartyRecord& p) const;
  void lose_party(PartyRecord& p, const std::string& reason, TimePoint now);
  void check_liveness(TimePoint now);
  void on_bye(PartyRecord& p, const proto::Bye& b, TimePoint now);
  void broadcast_directory(const PartyRecord* except);
  // ---- hub_turns.cpp ----
  void maybe_start_turn(TimePoint now);
  void on_step_report(PartyRecord& p, const std::string& peer, const proto::StepReport& r, TimePoint now);
  std::string report_problem(const PartyRecord& p, const proto::StepReport& r, proto::ErrorCode& code) const;
  std::string report_shape_problem(const proto::StepReport& r) const;
  // An accepted step report: global expert load, party totals, expert_load.jsonl, the broadcast.
  void accept_report(PartyRecord& p, const proto::StepReport& r);
  void record_report(PartyRecord& p, const proto::StepReport& r);
  void on_turn_done(PartyRecord& p, const std::string& peer, const proto::TurnDone& d, TimePoint now);
  void judge_suspect(const proto::TurnDone& d, TimePoint now);
  void abandon_turn(const std::string& reason, TimePoint now);
  // TurnNotice with no holder to every live party: the turn that just ended is over.
  void notice_turn_over();
  // Who holds the turn (or the open round's turns) now, for a party that joins in the middle.
  proto::TurnNotice current_turn_notice() const;
  void after_turn(TimePoint now);
  proto::ExpertLoad expert_load(int64_t reported_step) const;
  // ---- hub_control.cpp ----
  void on_control(const std::string& peer, const std::string& curve_key, const proto::Control& c,
                  TimePoint now);
  proto::ControlAck control(const std::string& action, TimePoint now);
  proto::ControlAck control_checkpoint(TimePoint now);
  proto::ControlAck control_snapshot(TimePoint now);
  std::string turn_text() const;  // "turn 7 of 'a'"
  void between_turns(TimePoint now);
  bool holding() const;
  void issue_checkpoint(TimePoint now);
  void on_checkpoint_done(PartyRecord& p, const proto::CheckpointDone& c, TimePoint now);
  void check_checkpoint(TimePoint now);
  // ---- hub_snapshots.cpp ----
  bool start_snapshot_round(bool final_round, TimePoint now);
  void on_snapshot(PartyRecord& p, const std::string& peer, const proto::Snapshot& s, TimePoint now);
  void check_snapshot_round(TimePoint now);
  void end_snapshot_round(bool timed_out, TimePoint now);
  // ---- hub_rounds.cpp (hub.schedule: concurrent) ----
  bool concurrent() const { return cfg_.hub.schedule == "concurrent"; }
  // A turn or a concurrent round is in progress.
  bool turn_open() const { return scheduler_.active().has_value() || open_round_.has_value(); }
  void maybe_start_round(TimePoint now);
  void on_round_report(PartyRecord& p, const std::string& peer, const proto::StepReport& r, TimePoint now);
  void on_round_turn_done(PartyRecord& p, const std::string& peer, const proto::TurnDone& d, TimePoint now);
  void on_round_norm(PartyRecord& p, const std::string& peer, const proto::RoundNorm& n, TimePoint now);
  void on_round_commit_ack(PartyRecord& p, const std::string& peer, const proto::RoundCommitAck& a,
                           TimePoint now);
  // A party lost or replaced while a round is open.
  void round_lose(uint32_t index, TimePoint now);
  // Deadlines and the next stage of the open round, when due.
  void check_round(TimePoint now);
  void close_round(TimePoint now);
  void commit_round(bool apply, const std::string& why, TimePoint now);
  void finish_round(TimePoint now);
  // ---- hub_end.cpp ----
  void begin_stop(const std::string& reason, TimePoint now);
  void advance_stop(TimePoint now);
  void finish_run(TimePoint now);

  HubConfig cfg_;
  HubStore& store_;
  HubOptions options_;
  std::string run_id_;
  std::string model_hash_;
  TimePoint started_;
  Registry registry_;
  PoolLayout layout_;
  TurnScheduler scheduler_;
  ExpertLoadStats load_;
  ExpertPool pool_;
  std::optional<SnapshotRound> round_;
  std::optional<OpenRound> open_round_;  // concurrent schedule
  uint64_t snapshot_seq_ = 0;
  bool pending_snapshot_ = false;       // a round waits for the current turn to end
  bool pending_checkpoint_ = false;     // checkpoint requests wait for the current turn to end
  std::set<uint32_t> checkpoint_wait_;  // live parties whose checkpoint_done is outstanding
  int64_t checkpoint_step_ = -1;
  TimePoint checkpoint_started_{};
  bool checkpoint_saved_ = false;  // hub_state.json written at the last checkpoint
  bool resumed_ = false;           // restore() continued a saved run
  int64_t state_saved_step_ = 0;   // step_ at the last write of hub_state.json
  LogLimiter limiter_;

  Phase phase_ = Phase::waiting;
  bool paused_ = false;
  int64_t step_ = 0;
  std::string stop_reason_;
  StopStage stop_stage_ = StopStage::none;
  TimePoint stop_sent_at_{};

  std::vector<Outgoing> out_;
  uint64_t msgs_in_ = 0, msgs_out_ = 0, bad_messages_ = 0;
  uint64_t bytes_in_ = 0, bytes_out_ = 0, send_failures_ = 0;
  TimePoint last_stats_;
};

}  // namespace pcmoe::hub
