// HubState's operator part: Control actions (pause, resume, checkpoint, snapshot, stop), federation
// checkpoints, and the between-turns barrier: snapshot rounds and checkpoint requests wait for the
// current turn to end, and no new turn starts until they are answered (see hub_state.h).
#include <fmt/format.h>

#include "common/log.h"
#include "hub/hub_state.h"
#include "hub/text.h"

namespace pcmoe::hub {

using proto::ErrorCode;
using proto::MsgType;

// ---- control ----

void HubState::on_control(const std::string& peer, const std::string& curve_key, const proto::Control& c,
                          TimePoint now) {
  const std::string op = operator_of(curve_key);
  if (op.empty()) {
    refuse(peer, MsgType::control, ErrorCode::unknown_party,
           "control needs an operator key (hub.operators, hub.ctl_key_file): pcmoe-ctl --key FILE; a "
           "party's key is not one",
           now);
    return;
  }
  proto::ControlAck ack = control(c.action, now);
  if (limiter_.allow(peer, now)) {
    PCMOE_INFO("hub.control")
        .kv("action", clip(c.action))
        .kv("ok", ack.ok)
        .kv("message", ack.message)
        .kv("operator", op)
        .kv("peer", peer_label(peer));
  }
  send(peer, std::move(ack));
}

std::string HubState::turn_text() const {
  if (open_round_) return fmt::format("round {}", open_round_->step);
  const auto& t = scheduler_.active();
  return t ? fmt::format("turn {} of '{}'", t->turn_id, registry_.at(t->party).id) : std::string("the turn");
}

proto::ControlAck HubState::control(const std::string& action, TimePoint now) {
  const bool ending = stop_stage_ != StopStage::none || phase_ == Phase::finished;
  if (action == "pause") {
    if (ending) return {false, fmt::format("the run is {}: nothing to pause", state_name())};
    if (paused_) return {false, "already paused"};
    paused_ = true;
    return {true, turn_open() ? fmt::format("paused at step {}; {} finishes first", step_, turn_text())
                              : fmt::format("paused at step {}", step_)};
  }
  if (action == "resume") {
    if (!paused_) return {false, fmt::format("not paused (state {})", state_name())};
    paused_ = false;
    maybe_start_turn(now);
    return {true, fmt::format("resumed at step {}", step_)};
  }
  if (action == "checkpoint") return control_checkpoint(now);
  if (action == "snapshot") {
    if (ending)
      return {false, fmt::format("the run is {}: its final snapshot is taken anyway", state_name())};
    return control_snapshot(now);
  }
  if (action == "stop") {
    if (ending) return {false, fmt::format("already {} ({})", state_name(), stop_reason_)};
    begin_stop("operator", now);
    return {true, fmt::format("stopping at step {} of {}: final snapshot, then stop to every party", step_,
                              cfg_.train.steps)};
  }
  return {false,
          fmt::format("unknown action '{}' (expected one of: pause, resume, checkpoint, snapshot, stop)",
                      clip(action))};
}

proto::ControlAck HubState::control_snapshot(TimePoint now) {
  if (round_ || pending_snapshot_) return {false, "a snapshot round is already pending or in progress"};
  if (registry_.live_count() == 0) return {false, "no live party to take a snapshot from"};
  pending_snapshot_ = true;
  between_turns(now);
  if (round_) {
    return {true, fmt::format("snapshot round {} requested from {} live parties", round_->id(),
                              round_->pending().size())};
  }
  return {true, fmt::format("snapshot queued: it starts when {} ends", turn_text())};
}

proto::ControlAck HubState::control_checkpoint(TimePoint now) {
  if (phase_ == Phase::finished) return {false, "the run has finished"};
  if (pending_checkpoint_ || !checkpoint_wait_.empty()) {
    return {false, fmt::format("a checkpoint is still in progress ({} parties have not answered)",
                               checkpoint_wait_.size())};
  }
  pending_checkpoint_ = true;
  between_turns(now);
  if (pending_checkpoint_) {
    return {true, fmt::format("checkpoint queued: every live party is asked when {} ends, and the hub "
                              "writes its state then",
                              turn_text())};
  }
  return {checkpoint_saved_, fmt::format("checkpoint at step {} requested from {} live parties; hub state {}",
                                         checkpoint_step_, checkpoint_wait_.size(),
                                         checkpoint_saved_ ? "written to " + store_.describe()
                                                           : "NOT written (see the hub's log)")};
}

// ---- the between-turns barrier ----

void HubState::between_turns(TimePoint now) {
  if (turn_open() || phase_ == Phase::finished) return;
  if (pending_checkpoint_) {
    pending_checkpoint_ = false;
    issue_checkpoint(now);
  }
  if (pending_snapshot_) {
    pending_snapshot_ = false;
    if (!round_ && stop_stage_ == StopStage::none) start_snapshot_round(false, now);
  }
}

bool HubState::holding() const {
  return round_.has_value() || !checkpoint_wait_.empty() || pending_snapshot_ || pending_checkpoint_;
}

void HubState::issue_checkpoint(TimePoint now) {
  std::vector<std::string> ids;
  checkpoint_wait_.clear();
  for (uint32_t i : registry_.live_indices()) {
    send(registry_.at(i).peer, proto::CheckpointRequest{step_});
    ids.push_back(registry_.at(i).id);
    checkpoint_wait_.insert(i);
  }
  checkpoint_step_ = step_;
  checkpoint_started_ = now;
  checkpoint_saved_ = save_state(now);
  PCMOE_INFO("hub.checkpoint_requested")
      .kv("step", step_)
      .kv("parties", ids)
      .kv("state_written", checkpoint_saved_);
}

void HubState::on_checkpoint_done(PartyRecord& p, const proto::CheckpointDone& c, TimePoint now) {
  PCMOE_LOG(c.ok ? log::Level::info : log::Level::warn, "hub.checkpoint_done")
      .kv("party", p.id)
      .kv("step", c.step)
      .kv("ok", c.ok)
      .kv("path", clip(c.path, 200))
      .kv("reason", clip(c.reason, 200));
  if (checkpoint_wait_.erase(p.index) > 0 && checkpoint_wait_.empty()) {
    PCMOE_INFO("hub.checkpoint_complete").kv("step", checkpoint_step_);
    maybe_start_turn(now);
    advance_stop(now);
  }
}

void HubState::check_checkpoint(TimePoint now) {
  if (checkpoint_wait_.empty() || now - checkpoint_started_ <= options_.timeouts.checkpoint) return;
  std::vector<std::string> pending;
  for (uint32_t i : checkpoint_wait_) pending.push_back(registry_.at(i).id);
  PCMOE_WARN("hub.checkpoint_timeout").kv("step", checkpoint_step_).kv("pending", pending);
  checkpoint_wait_.clear();
  maybe_start_turn(now);
  advance_stop(now);
}

}  // namespace pcmoe::hub
