// HubState's expert-pool part: snapshot rounds (requests to every live party, validation of each
// Snapshot against the pool layout, completion or timeout) and the pool they build (see hub_state.h).
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "common/json.h"
#include "common/log.h"
#include "hub/hub_state.h"
#include "hub/text.h"

namespace pcmoe::hub {

using proto::ErrorCode;
using proto::MsgType;

// ---- snapshot rounds ----

bool HubState::start_snapshot_round(bool final_round, TimePoint now) {
  std::vector<uint32_t> live = registry_.live_indices();
  if (live.empty()) return false;
  round_.emplace(++snapshot_seq_, live, now, final_round);
  std::vector<std::string> ids;
  for (uint32_t i : live) {
    send(registry_.at(i).peer, proto::SnapshotRequest{round_->id()});
    ids.push_back(registry_.at(i).id);
  }
  PCMOE_INFO("hub.snapshot_round")
      .kv("snapshot", round_->id())
      .kv("final", final_round)
      .kv("step", step_)
      .kv("parties", ids);
  return true;
}

void HubState::on_snapshot(PartyRecord& p, const std::string& peer, const proto::Snapshot& s, TimePoint now) {
  if (!round_ || s.snapshot_id != round_->id() || !round_->expects(p.index)) {
    refuse(peer, MsgType::snapshot, ErrorCode::out_of_order,
           fmt::format("no snapshot {} is pending from party '{}' (current round: {})", s.snapshot_id, p.id,
                       round_ ? std::to_string(round_->id()) : std::string("none")),
           now);
    return;
  }
  if (auto problem = layout_.check(p.index, s)) {
    // Anything but this party's own expert parameters (e.g. a backbone weight) never enters the hub.
    ++bad_messages_;
    if (limiter_.allow(peer, now)) {
      PCMOE_WARN("hub.snapshot_rejected")
          .kv("party", p.id)
          .kv("snapshot", s.snapshot_id)
          .kv("code", proto::error_code_name(problem->code))
          .kv("reason", problem->reason);
    }
    send(peer, proto::ErrorMsg{static_cast<uint16_t>(problem->code), problem->reason,
                               static_cast<uint16_t>(MsgType::snapshot), 0});
    return;
  }
  round_->accept(p.index, s);
  PCMOE_DEBUG("hub.snapshot_received").kv("party", p.id).kv("snapshot", s.snapshot_id).kv("step", s.step);
  check_snapshot_round(now);
}

void HubState::check_snapshot_round(TimePoint now) {
  if (!round_) return;
  if (round_->complete()) {
    end_snapshot_round(false, now);
  } else if (now - round_->started() > options_.timeouts.snapshot) {
    end_snapshot_round(true, now);
  }
}

void HubState::end_snapshot_round(bool timed_out, TimePoint now) {
  SnapshotRound round = std::move(*round_);
  round_.reset();
  std::vector<std::string> ids, carried;
  for (const auto& p : registry_.parties()) {
    ids.push_back(p.id);
    if (!round.received().count(p.index)) carried.push_back(p.id);
  }
  if (timed_out) {
    std::vector<std::string> pending;
    for (uint32_t i : round.pending()) pending.push_back(registry_.at(i).id);
    PCMOE_WARN("hub.snapshot_timeout").kv("snapshot", round.id()).kv("pending", pending);
  }
  std::vector<std::string> layers;
  for (uint32_t l : layout_.moe_layers()) layers.push_back(std::to_string(l));
  std::map<std::string, std::string> meta{{"run_id", run_id_},
                                          {"model_hash", model_hash_},
                                          {"n_experts", std::to_string(layout_.n_experts())},
                                          {"moe_layers", fmt::format("{}", fmt::join(layers, ","))}};
  std::string why = pool_.assemble(round, std::move(meta), ids);
  if (!why.empty()) {
    PCMOE_WARN("hub.snapshot_incomplete").kv("snapshot", round.id()).kv("reason", why);
  } else {
    uint64_t bytes = 0;
    for (const auto& t : pool_.file()->tensors) bytes += t.bytes.size();
    JsonObject party_steps;  // which experts are how old
    for (size_t i = 0; i < pool_.party_steps().size() && i < ids.size(); ++i) {
      party_steps.add(ids[i], pool_.party_steps()[i]);
    }
    try {
      store_.write_pool(*pool_.file());
      PCMOE_INFO("hub.pool_written")
          .kv("snapshot", round.id())
          .kv("step", pool_.step())
          .kv("tensors", pool_.file()->tensors.size())
          .kv("bytes", bytes)
          .kv("carried_from_previous", carried)
          .kv("party_steps", party_steps)
          .kv("out_dir", store_.describe());
    } catch (const std::exception& e) {
      PCMOE_ERROR("hub.write_failed").kv("what", "pool.pcmoe").kv("error", e.what());
    }
  }
  if (round.final_round()) {
    advance_stop(now);
  } else {
    if (why.empty()) save_state(now);  // a restarted hub continues from this pool and step
    maybe_start_turn(now);             // turns waited for this round
  }
}

}  // namespace pcmoe::hub
