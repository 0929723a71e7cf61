// HubState's concurrent rounds (hub.schedule: concurrent; see hub_state.h, rounds.h and PROTOCOL.md
// 9.6): a round opens a one-step turn for every live party at global step `step`; when every
// participant has ended its turn (or was left out: failed, lost, past hub.round_deadline_ms), every
// live party reports, as a host, the squared norm of its experts' summed gradients of the round; the
// hub sums them into the norm of the mean gradient over the P parties whose step completed, and
// commits: every expert steps once on its summed gradient times min(1, clip / norm) / P. A round with
// a participant left out, or a host lost before the commit, drops its expert update instead (no
// expert steps twice or half-way: the parties' own backbone steps stand). Either way the global step
// advances by one.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>

#include "common/log.h"
#include "hub/hub_state.h"
#include "hub/text.h"

namespace pcmoe::hub {

using proto::ErrorCode;
using proto::MsgType;

namespace {
constexpr Millis kStageTimeout{30000};  // norms and commit acknowledgements
}

void HubState::maybe_start_round(TimePoint now) {
  between_turns(now);
  if (phase_ != Phase::training || paused_ || stop_stage_ != StopStage::none || turn_open()) return;
  if (holding()) return;  // a snapshot round or a checkpoint is being answered
  if (step_ >= cfg_.train.steps) {
    begin_stop("finished", now);
    return;
  }
  const auto live = registry_.live_indices();
  if (live.empty()) return;
  OpenRound r;
  r.step = step_;
  r.opened = r.stage_started = now;
  std::vector<std::string> ids;
  for (uint32_t i : live) {
    r.turn_of[i] = scheduler_.issue_turn_id();
    ids.push_back(registry_.at(i).id);
  }
  open_round_ = std::move(r);
  // Every live party learns the round's participants (what its expert host admits), then each
  // participant its own turn of the round.
  broadcast(current_turn_notice());
  for (const auto& [i, turn_id] : open_round_->turn_of) {
    send(registry_.at(i).peer, proto::Turn{turn_id, static_cast<uint64_t>(step_), step_, 1});
  }
  PCMOE_INFO("hub.round_open").kv("step", step_).kv("parties", ids);
}

void HubState::on_round_report(PartyRecord& p, const std::string& peer, const proto::StepReport& r,
                               TimePoint now) {
  OpenRound* o = open_round_ ? &*open_round_ : nullptr;
  std::string why;
  if (o == nullptr || o->stage != OpenRound::Stage::training || !o->turn_of.count(p.index)) {
    why = fmt::format("step report from '{}', which takes no part in an open round", p.id);
  } else if (r.turn_id != o->turn_of.at(p.index) || r.step != o->step) {
    why = fmt::format("report for turn {} step {}, but '{}' holds turn {} of round {}", r.turn_id, r.step,
                      p.id, o->turn_of.at(p.index), o->step);
  } else if (o->reported.count(p.index)) {
    why = fmt::format("round {} takes one step of '{}', already reported", o->step, p.id);
  }
  if (!why.empty()) return refuse(peer, MsgType::step_report, ErrorCode::out_of_order, why, now);
  if (std::string shape = report_shape_problem(r); !shape.empty()) {
    return refuse(peer, MsgType::step_report, ErrorCode::bad_shape, shape, now);
  }
  o->reported.insert(p.index);
  accept_report(p, r);
}

void HubState::on_round_turn_done(PartyRecord& p, const std::string& peer, const proto::TurnDone& d,
                                  TimePoint now) {
  OpenRound* o = open_round_ ? &*open_round_ : nullptr;
  if (o == nullptr || !o->turn_of.count(p.index) || o->turn_of.at(p.index) != d.turn_id ||
      o->done_ok.count(p.index) || o->left_out.count(p.index)) {
    return refuse(
        peer, MsgType::turn_done, ErrorCode::out_of_order,
        fmt::format("turn_done for turn {} from '{}', which holds no open turn of a round", d.turn_id, p.id),
        now);
  }
  const bool ok = d.ok && o->reported.count(p.index) > 0;
  (ok ? o->done_ok : o->left_out).insert(p.index);
  PCMOE_LOG(ok ? log::Level::info : log::Level::warn, "hub.turn_done")
      .kv("turn", d.turn_id)
      .kv("party", p.id)
      .kv("ok", ok)
      .kv("steps_done", d.steps_done)
      .kv("reports", static_cast<int64_t>(o->reported.count(p.index)))
      .kv("reason", clip(d.reason, 200))
      .kv("suspect", clip(d.suspect_party))
      .kv("step", o->step);
  check_round(now);
}

void HubState::on_round_norm(PartyRecord& p, const std::string& peer, const proto::RoundNorm& n,
                             TimePoint now) {
  OpenRound* o = open_round_ ? &*open_round_ : nullptr;
  if (o == nullptr || o->stage != OpenRound::Stage::norms || n.step != o->step || !o->hosts.count(p.index) ||
      o->norms.count(p.index)) {
    return refuse(peer, MsgType::round_norm, ErrorCode::out_of_order,
                  fmt::format("no norm of round {} is expected from '{}'", n.step, p.id), now);
  }
  if (!std::isfinite(n.grad_sq)) {
    PCMOE_WARN("hub.round_norm_not_finite").kv("party", p.id).kv("step", n.step);
    return commit_round(false, fmt::format("the experts of '{}' have non-finite gradients", p.id), now);
  }
  o->norms[p.index] = n.grad_sq;
  check_round(now);
}

void HubState::on_round_commit_ack(PartyRecord& p, const std::string& peer, const proto::RoundCommitAck& a,
                                   TimePoint now) {
  OpenRound* o = open_round_ ? &*open_round_ : nullptr;
  if (o == nullptr || o->stage != OpenRound::Stage::commit || a.step != o->step || !o->hosts.count(p.index)) {
    return refuse(peer, MsgType::round_commit_ack, ErrorCode::out_of_order,
                  fmt::format("no commit of round {} is awaited from '{}'", a.step, p.id), now);
  }
  o->acked.insert(p.index);
  check_round(now);
}

void HubState::round_lose(uint32_t index, TimePoint now) {
  if (!open_round_) return;
  OpenRound& o = *open_round_;
  static constexpr const char* kStage[] = {"training", "norms", "commit"};
  if (o.turn_of.count(index) || o.hosts.count(index)) {
    PCMOE_WARN("hub.round_party_lost")
        .kv("party", registry_.at(index).id)
        .kv("step", o.step)
        .kv("stage", kStage[static_cast<int>(o.stage)])
        .kv("norm_in", o.norms.count(index) > 0);
  }
  if (o.turn_of.count(index) && !o.done_ok.count(index)) o.left_out.insert(index);
  if (o.hosts.count(index)) {
    o.hosts.erase(index);
    // Its experts' gradients of the round are gone with it: the update would be half a round's.
    if (o.stage == OpenRound::Stage::norms) {
      return commit_round(false, fmt::format("host '{}' lost before the commit", registry_.at(index).id),
                          now);
    }
  }
  check_round(now);
}

void HubState::check_round(TimePoint now) {
  if (!open_round_) return;
  OpenRound& o = *open_round_;
  switch (o.stage) {
    case OpenRound::Stage::training:
      if (now - o.opened > Millis(cfg_.hub.round_deadline_ms)) {
        for (const auto& [i, turn] : o.turn_of) {
          if (o.done_ok.count(i) || o.left_out.count(i)) continue;
          o.left_out.insert(i);
          PCMOE_WARN("hub.round_straggler")
              .kv("party", registry_.at(i).id)
              .kv("step", o.step)
              .kv("deadline_ms", cfg_.hub.round_deadline_ms);
        }
      }
      if (o.training_over()) close_round(now);
      return;
    case OpenRound::Stage::norms:
      if (o.norms.size() >= o.hosts.size()) {
        double sq = 0;
        for (const auto& [i, v] : o.norms) sq += v;
        const double parties = static_cast<double>(o.done_ok.size());
        o.norm = std::sqrt(sq) / parties;  // the norm of the mean of the parties' gradients
        const double clip = cfg_.train.grad_clip > 0 && o.norm > cfg_.train.grad_clip
                                ? cfg_.train.grad_clip / (o.norm + 1e-6)
                                : 1.0;
        o.scale = clip / parties;
        commit_round(true, "", now);
      } else if (now - o.stage_started > kStageTimeout) {
        commit_round(false, "not every host reported its gradient norm in time", now);
      }
      return;
    case OpenRound::Stage::commit:
      if (o.acked.size() >= o.hosts.size() || now - o.stage_started > kStageTimeout) finish_round(now);
      return;
  }
}

void HubState::close_round(TimePoint now) {
  OpenRound& o = *open_round_;
  for (uint32_t i : registry_.live_indices()) o.hosts.insert(i);
  if (!o.left_out.empty() || o.done_ok.empty()) {
    std::vector<std::string> ids;
    for (uint32_t i : o.left_out) ids.push_back(registry_.at(i).id);
    return commit_round(false, fmt::format("left out of the round: {}", fmt::join(ids, ", ")), now);
  }
  o.stage = OpenRound::Stage::norms;
  o.stage_started = now;
  for (uint32_t i : o.hosts) send(registry_.at(i).peer, proto::RoundClose{o.step});
}

void HubState::commit_round(bool apply, const std::string& why, TimePoint now) {
  OpenRound& o = *open_round_;
  if (o.hosts.empty()) {
    for (uint32_t i : registry_.live_indices()) o.hosts.insert(i);
  }
  o.apply = apply;
  o.why = why;
  if (!apply) o.scale = 0;
  o.stage = OpenRound::Stage::commit;
  o.stage_started = now;
  for (uint32_t i : o.hosts) send(registry_.at(i).peer, proto::RoundCommit{o.step, apply, o.scale});
  check_round(now);
}

void HubState::finish_round(TimePoint now) {
  OpenRound o = std::move(*open_round_);
  open_round_.reset();
  PCMOE_LOG(o.apply ? log::Level::info : log::Level::warn, "hub.round_done")
      .kv("step", o.step)
      .kv("parties", static_cast<int64_t>(o.done_ok.size()))
      .kv("left_out", static_cast<int64_t>(o.left_out.size()))
      .kv("applied", o.apply)
      .kv("norm", o.norm)
      .kv("scale", o.scale)
      .kv("why", o.why)
      .kv("ms", ms_between(o.opened, now));
  step_ = o.step + 1;
  if (!o.reported.empty()) broadcast(expert_load(o.step));  // the round's load, to every party at once
  const int64_t every = cfg_.hub.snapshot_every;
  if (every > 0 && step_ % every == 0 && step_ < cfg_.train.steps) pending_snapshot_ = true;
  after_turn(now);
}

}  // namespace pcmoe::hub
