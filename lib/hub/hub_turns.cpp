// HubState's turn part: granting turns, step reports (global step, router statistics, the
// expert-load broadcast and log), turn completion and failure, abandoned turns (see hub_state.h).
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "common/log.h"
#include "hub/hub_state.h"
#include "hub/json_matrix.h"
#include "hub/text.h"

namespace pcmoe::hub {

using proto::ErrorCode;
using proto::MsgType;

void HubState::maybe_start_turn(TimePoint now) {
  if (concurrent()) return maybe_start_round(now);
  between_turns(now);
  if (phase_ != Phase::training || paused_ || stop_stage_ != StopStage::none || scheduler_.active()) return;
  if (holding()) return;  // a snapshot round or a checkpoint is being answered
  if (step_ >= cfg_.train.steps) {
    begin_stop("finished", now);
    return;
  }
  auto pick = scheduler_.pick(registry_.live_indices());
  if (!pick) return;  // nobody live: wait
  if (pick->new_round) {
    std::vector<std::string> ids;
    std::vector<int64_t> indices;
    for (uint32_t i : scheduler_.order()) {
      ids.push_back(registry_.at(i).id);
      indices.push_back(i);
    }
    PCMOE_INFO("hub.turn_order").kv("round", scheduler_.round()).kv("order", ids).kv("indices", indices);
  }
  const ActiveTurn& t = scheduler_.begin(pick->party, step_, cfg_.train.steps, now);
  const PartyRecord& p = registry_.at(t.party);
  // Every live party learns who holds the turn and for which steps (what its expert host admits),
  // before the holder learns that it holds it.
  broadcast(proto::TurnNotice{t.turn_id, t.round, {t.party}, t.step_begin, t.n_steps});
  send(p.peer, proto::Turn{t.turn_id, t.round, t.step_begin, t.n_steps});
  PCMOE_INFO("hub.turn")
      .kv("turn", t.turn_id)
      .kv("round", t.round)
      .kv("party", p.id)
      .kv("step_begin", t.step_begin)
      .kv("n_steps", t.n_steps);
}

std::string HubState::report_problem(const PartyRecord& p, const proto::StepReport& r,
                                     ErrorCode& code) const {
  code = ErrorCode::out_of_order;
  const auto& t = scheduler_.active();
  if (!t || t->party != p.index) return fmt::format("step report from '{}', which holds no turn", p.id);
  if (r.turn_id != t->turn_id)
    return fmt::format("report for turn {}, but turn {} is in progress", r.turn_id, t->turn_id);
  if (t->reports >= t->n_steps)
    return fmt::format("turn {} has {} steps, all already reported", t->turn_id, t->n_steps);
  if (r.step != t->next_step())
    return fmt::format("expected a report for step {}, got step {}", t->next_step(), r.step);
  code = ErrorCode::bad_shape;
  return report_shape_problem(r);
}

std::string HubState::report_shape_problem(const proto::StepReport& r) const {
  std::string why = load_.shape_error(r.expert_counts);
  if (!why.empty()) return why;
  if (!r.gate_mean.empty()) {
    bool same = r.gate_mean.size() == r.expert_counts.size();
    for (size_t l = 0; same && l < r.gate_mean.size(); ++l)
      same = r.gate_mean[l].size() == r.expert_counts[l].size();
    if (!same) return "gate_mean must be empty or have the shape of expert_counts (MoE layers x experts)";
  }
  return "";
}

void HubState::record_report(PartyRecord& p, const proto::StepReport& r) {
  auto add = [](uint64_t a, uint64_t b) { return a > std::numeric_limits<uint64_t>::max() - b ? a : a + b; };
  PartyTotals& t = p.totals;
  ++t.steps_done;
  t.tokens = add(t.tokens, r.tokens);
  t.last_loss = r.loss;
  if (!(r.eval_loss < 0)) t.last_eval_loss = r.eval_loss;  // -1: not evaluated (NaN is kept: divergence)
  t.tokens_per_s =
      (r.step_ms > 0 && std::isfinite(r.step_ms)) ? static_cast<double>(r.tokens) / (r.step_ms / 1e3) : 0;
  t.peak_memory_bytes = std::max(t.peak_memory_bytes, r.peak_memory_bytes);
  t.bytes_sent = add(t.bytes_sent, r.bytes_sent);
  t.bytes_received = add(t.bytes_received, r.bytes_received);
  p.step_times.add(r.step_ms);
  p.losses.add(r.step + 1, r.loss, r.eval_loss);
}

proto::ExpertLoad HubState::expert_load(int64_t reported_step) const {
  proto::ExpertLoad m;
  m.step = reported_step;  // the last step the load includes
  m.running = load_.running_shares();
  m.window = load_.window_shares();
  m.window_steps = static_cast<uint32_t>(load_.window_fill());
  m.alive = registry_.alive_mask();
  return m;
}

void HubState::on_step_report(PartyRecord& p, const std::string& peer, const proto::StepReport& r,
                              TimePoint now) {
  if (concurrent()) return on_round_report(p, peer, r, now);
  ErrorCode code = ErrorCode::ok;
  std::string why = report_problem(p, r, code);
  if (!why.empty()) {
    refuse(peer, MsgType::step_report, code, why, now);
    return;
  }
  scheduler_.count_report();
  step_ = r.step + 1;
  accept_report(p, r);
  const int64_t every = cfg_.hub.snapshot_every;
  // Taken between turns: after this turn, before the next (the final round covers the last step).
  if (every > 0 && step_ % every == 0 && step_ < cfg_.train.steps) pending_snapshot_ = true;
}

void HubState::accept_report(PartyRecord& p, const proto::StepReport& r) {
  load_.add(r.expert_counts);
  record_report(p, r);
  JsonObject line;
  line.add("ts", log::utc_timestamp()).add("step", r.step).add("party", p.id).add("turn", r.turn_id);
  line.add("tokens", r.tokens).add("loss", r.loss);
  line.add_raw("counts", json_matrix(r.expert_counts)).add_raw("window", json_matrix(load_.window_shares()));
  try {
    store_.append_expert_load(line.str());
  } catch (const std::exception& e) {
    PCMOE_ERROR("hub.write_failed").kv("what", "expert_load.jsonl").kv("error", e.what());
  }
  if (!concurrent()) broadcast(expert_load(r.step));  // concurrent: once per round, at its end
  PCMOE_DEBUG("hub.step").kv("party", p.id).kv("step", r.step).kv("loss", r.loss).kv("tokens", r.tokens);
}

void HubState::on_turn_done(PartyRecord& p, const std::string& peer, const proto::TurnDone& d,
                            TimePoint now) {
  if (concurrent()) return on_round_turn_done(p, peer, d, now);
  const auto& t = scheduler_.active();
  if (!t || t->party != p.index || d.turn_id != t->turn_id) {
    refuse(peer, MsgType::turn_done, ErrorCode::out_of_order,
           t && t->party == p.index
               ? fmt::format("turn {} is in progress, not turn {}", t->turn_id, d.turn_id)
               : fmt::format("turn_done from '{}', which holds no turn", p.id),
           now);
    return;
  }
  // A turn that claims more steps than were reported (and accepted) is suspicious: warn.
  const bool consistent = d.ok && d.steps_done == t->reports;
  PCMOE_LOG(consistent ? log::Level::info : log::Level::warn, "hub.turn_done")
      .kv("turn", t->turn_id)
      .kv("party", p.id)
      .kv("ok", d.ok)
      .kv("steps_done", d.steps_done)
      .kv("reports", t->reports)
      .kv("reason", clip(d.reason, 200))
      .kv("suspect", clip(d.suspect_party))
      .kv("step", step_);
  if (d.ok) {
    scheduler_.finish(true, std::nullopt);
  } else {
    judge_suspect(d, now);
  }
  after_turn(now);
}

void HubState::judge_suspect(const proto::TurnDone& d, TimePoint now) {
  PartyRecord* s = d.suspect_party.empty() ? nullptr : registry_.find_id(d.suspect_party);
  const uint32_t streak = scheduler_.finish(false, s ? std::optional<uint32_t>(s->index) : std::nullopt);
  if (s == nullptr || !s->alive) return;
  const double silent_ms = ms_between(s->last_seen, now);
  if (silent_ms > cfg_.hub.party_timeout_ms) {
    lose_party(*s, fmt::format("named by a failed turn and silent for {:.0f} ms", silent_ms), now);
  } else if (streak >= 3) {
    lose_party(
        *s, fmt::format("named by {} consecutive failed turns (last: {})", streak, clip(d.reason, 200)), now);
  }
}

void HubState::abandon_turn(const std::string& reason, TimePoint now) {
  const auto& t = scheduler_.active();
  if (!t) return;
  PCMOE_WARN("hub.turn_abandoned")
      .kv("turn", t->turn_id)
      .kv("party", registry_.at(t->party).id)
      .kv("reason", reason)
      .kv("reports", t->reports)
      .kv("step", step_);
  scheduler_.abandon();
  after_turn(now);
}

proto::TurnNotice HubState::current_turn_notice() const {
  if (scheduler_.active()) {
    const ActiveTurn& t = *scheduler_.active();
    return proto::TurnNotice{t.turn_id, t.round, {t.party}, t.step_begin, t.n_steps};
  }
  if (open_round_ && open_round_->stage == OpenRound::Stage::training) {
    proto::TurnNotice n{0, scheduler_.round(), {}, open_round_->step, 1};
    for (const auto& [i, turn] : open_round_->turn_of) {
      n.holders.push_back(i);
      n.turn_id = std::max(n.turn_id, turn);
    }
    return n;
  }
  return proto::TurnNotice{scheduler_.turns_issued(), scheduler_.round(), {}, step_, 0};
}

void HubState::notice_turn_over() {
  broadcast(proto::TurnNotice{scheduler_.turns_issued(), scheduler_.round(), {}, step_, 0});
}

void HubState::after_turn(TimePoint now) {
  notice_turn_over();
  if (stop_stage_ != StopStage::none) {
    advance_stop(now);
  } else if (step_ >= cfg_.train.steps) {
    begin_stop("finished", now);
  } else {
    // What a restarted hub continues from (hub.resume): at most state_every steps behind.
    if (cfg_.hub.state_every > 0 && step_ - state_saved_step_ >= cfg_.hub.state_every) save_state(now);
    maybe_start_turn(now);
  }
}

}  // namespace pcmoe::hub
