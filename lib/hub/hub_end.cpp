// HubState's end of the run: drain the turn -> final snapshot round -> Stop{reason} -> byes (the
// parties keep serving experts for each other's final evaluation) -> Stop{release} -> finished
// (see hub_state.h).
#include <fmt/format.h>

#include "common/log.h"
#include "hub/hub_state.h"
#include "hub/text.h"

namespace pcmoe::hub {

std::vector<Outgoing> HubState::request_stop(const std::string& reason, TimePoint now) {
  begin_stop(reason, now);
  return take();
}

void HubState::begin_stop(const std::string& reason, TimePoint now) {
  if (stop_stage_ != StopStage::none || phase_ == Phase::finished) return;
  stop_reason_ = reason;
  stop_stage_ = StopStage::draining;
  phase_ = Phase::stopping;
  const auto& t = scheduler_.active();
  PCMOE_INFO("hub.stopping")
      .kv("reason", reason)
      .kv("step", step_)
      .kv("total_steps", cfg_.train.steps)
      .kv("waiting_for_turn", t ? static_cast<int64_t>(t->turn_id) : int64_t{-1});
  advance_stop(now);
}

void HubState::advance_stop(TimePoint now) {
  switch (stop_stage_) {
    case StopStage::none:
    case StopStage::done:
      return;
    case StopStage::draining:
      // The current turn finishes (or its holder is lost); a queued checkpoint goes out and is answered.
      between_turns(now);
      if (turn_open() || !checkpoint_wait_.empty()) return;
      stop_stage_ = StopStage::final_snapshot;
      pending_snapshot_ = false;  // superseded by the final round
      if (round_) {
        PCMOE_INFO("hub.snapshot_superseded").kv("snapshot", round_->id());
        round_.reset();
      }
      if (cfg_.hub.final_snapshot && start_snapshot_round(true, now))
        return;  // end_snapshot_round() comes back here
      [[fallthrough]];
    case StopStage::final_snapshot: {
      if (round_) return;
      std::vector<std::string> ids;
      for (uint32_t i : registry_.live_indices()) {
        send(registry_.at(i).peer, proto::Stop{stop_reason_});
        ids.push_back(registry_.at(i).id);
      }
      stop_stage_ = StopStage::awaiting_byes;
      stop_sent_at_ = now;
      PCMOE_INFO("hub.stop_sent").kv("reason", stop_reason_).kv("parties", ids).kv("pool_step", pool_.step());
      [[fallthrough]];
    }
    case StopStage::awaiting_byes: {
      bool all_bye = true;
      for (const auto& p : registry_.parties()) all_bye = all_bye && (!p.alive || p.said_bye);
      if (all_bye || now - stop_sent_at_ > options_.timeouts.bye) finish_run(now);
      return;
    }
  }
}

void HubState::finish_run(TimePoint now) {
  std::vector<std::string> byes, missing;
  for (const auto& p : registry_.parties()) {
    if (p.said_bye) byes.push_back(p.id);
    if (p.alive && !p.said_bye) missing.push_back(p.id);
    if (p.alive) send(p.peer, proto::Stop{"release"});  // they may shut down their expert services now
  }
  phase_ = Phase::finished;
  stop_stage_ = StopStage::done;
  PCMOE_INFO("hub.finished")
      .kv("reason", stop_reason_)
      .kv("step", step_)
      .kv("total_steps", cfg_.train.steps)
      .kv("turns", scheduler_.turns_issued())
      .kv("rounds", scheduler_.round() + (scheduler_.turns_issued() ? 1 : 0))
      .kv("pool_step", pool_.step())
      .kv("byes", byes)
      .kv("no_bye", missing)
      .kv("uptime_s", ms_between(started_, now) / 1e3)
      .kv("bad_messages", bad_messages_);
  save_state(now);
}

}  // namespace pcmoe::hub
