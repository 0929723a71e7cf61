// HubState's membership part: hello (accept or reject), the start condition, directory
// broadcasts, liveness and loss of parties, bye (see hub_state.h).
#include <fmt/format.h>

#include "common/log.h"
#include "common/random.h"
#include "hub/hub_state.h"
#include "hub/text.h"
#include "net/endpoint.h"

namespace pcmoe::hub {

using proto::ErrorCode;

namespace {
std::string short_key(const std::string& key) { return key.empty() ? "(none)" : clip(key, 8); }
}  // namespace

std::optional<std::pair<ErrorCode, std::string>> HubState::hello_problem(const std::string& peer,
                                                                         const std::string& curve_key,
                                                                         const proto::Hello& h,
                                                                         TimePoint now) {
  auto problem = [](ErrorCode c, std::string why) {
    return std::make_optional(std::make_pair(c, std::move(why)));
  };
  // Order of the checks: proto/PROTOCOL.md section 7 (id, keys, version, model hash, duplicate).
  if (phase_ == Phase::finished) return problem(ErrorCode::stopping, "the run has finished: nothing to join");
  PartyRecord* p = registry_.find_id(h.party_id);
  if (p == nullptr) {
    return problem(ErrorCode::unknown_party,
                   fmt::format("party '{}' is not in this hub's config (hub.parties)", clip(h.party_id)));
  }
  if (options_.curve && curve_key != p->config_key) {
    return problem(
        ErrorCode::unknown_party,
        fmt::format("this connection authenticated with key {}..., but party '{}' is configured with "
                    "key {}... (hub.parties[{}].public_key)",
                    short_key(curve_key), p->id, short_key(p->config_key), p->index));
  }
  if (options_.curve && h.curve_public_key != curve_key) {
    return problem(ErrorCode::unknown_party,
                   fmt::format("hello announces key {}..., but the connection authenticated with key {}...",
                               short_key(h.curve_public_key), short_key(curve_key)));
  }
  if (h.proto_major != proto::kProtocolMajor) {
    return problem(
        ErrorCode::bad_version,
        fmt::format("party speaks protocol {}.{}, this hub speaks {}.{} (the major versions must match)",
                    h.proto_major, h.proto_minor, proto::kProtocolMajor, proto::kProtocolMinor));
  }
  if (h.model_hash != model_hash_) {
    return problem(
        ErrorCode::config_mismatch,
        fmt::format("model config hash {} of party '{}' differs from the hub's {}: use the same preset "
                    "(model + train) on every participant",
                    clip(h.model_hash), p->id, model_hash_));
  }
  try {
    net::parse_endpoint(h.expert_endpoint, net::EndpointUse::connect);
  } catch (const ConfigError& e) {
    return problem(ErrorCode::bad_field, fmt::format("expert_endpoint: {}", clip(e.what(), 200)));
  }
  if (PartyRecord* other = registry_.find_alive_peer(peer); other != nullptr && other != p) {
    return problem(ErrorCode::bad_field,
                   fmt::format("this connection is already registered as party '{}'", other->id));
  }
  // Another connection speaks for this live party. With CURVE the key proves who it is (checked
  // above): it takes over. Without CURVE only the same process may (its session token); anyone
  // else waits until the live connection has been silent for party_timeout_ms.
  const bool same_process = h.session != 0 && h.session == p->session;
  if (p->alive && p->peer != peer && !options_.curve && !same_process) {
    const double silent_ms = ms_between(p->last_seen, now);
    if (silent_ms <= cfg_.hub.party_timeout_ms) {
      return problem(
          ErrorCode::duplicate_party,
          fmt::format("party '{}' is already connected (heard from {:.0f} ms ago); without CURVE a new "
                      "connection is accepted for it once the old one has been silent for "
                      "hub.party_timeout_ms ({} ms)",
                      p->id, silent_ms, cfg_.hub.party_timeout_ms));
    }
  }
  return std::nullopt;
}

void HubState::reject(const std::string& peer, const proto::Hello& h, ErrorCode code,
                      const std::string& reason, TimePoint now) {
  ++bad_messages_;
  if (limiter_.allow(peer, now)) {
    PCMOE_WARN("hub.party_rejected")
        .kv("party", clip(h.party_id))
        .kv("peer", peer_label(peer))
        .kv("code", proto::error_code_name(code))
        .kv("reason", reason);
  }
  // The peer is forgotten: nothing about it was recorded.
  send(peer, proto::Reject{static_cast<uint16_t>(code), reason});
}

proto::Welcome HubState::welcome_for(const PartyRecord& p) const {
  proto::Welcome w;
  w.party_index = p.index;
  w.run_id = run_id_;
  w.total_steps = cfg_.train.steps;
  w.step = step_;
  w.steps_per_turn = static_cast<uint32_t>(cfg_.hub.steps_per_turn);
  w.moe_layers = layout_.moe_layers();
  w.n_experts = layout_.n_experts();
  w.directory = registry_.directory();
  w.placement = layout_.placement();
  w.directory_epoch = registry_.epoch();
  if (concurrent()) w.schedule = "concurrent";
  w.session = p.session;
  return w;
}

void HubState::on_hello(const std::string& peer, const std::string& curve_key, const proto::Hello& h,
                        TimePoint now) {
  if (auto problem = hello_problem(peer, curve_key, h, now)) {
    reject(peer, h, problem->first, problem->second, now);
    return;
  }
  PartyRecord& p = *registry_.find_id(h.party_id);
  if (p.alive && h.session != 0 && h.session == p.session) {
    resume_session(p, peer, curve_key, now);
  } else {
    register_party(p, peer, curve_key, h, now);
  }
}

void HubState::resume_session(PartyRecord& p, const std::string& peer, const std::string& curve_key,
                              TimePoint now) {
  // Its heartbeats went unanswered, or ZeroMQ made its connection again (a new routing id): the
  // registration, its turn and its part in a snapshot round or checkpoint stay as they are.
  const std::string old_peer = p.peer;
  registry_.move_connection(p, peer, curve_key, now);
  send(peer, welcome_for(p));
  send(peer, current_turn_notice());  // what its expert host admits
  PCMOE_INFO("hub.party_reconnected")
      .kv("party", p.id)
      .kv("old_peer", peer_label(old_peer))
      .kv("peer", peer_label(peer))
      .kv("same_connection", old_peer == peer)
      .kv("step", step_);
}

void HubState::register_party(PartyRecord& p, const std::string& peer, const std::string& curve_key,
                              const proto::Hello& h, TimePoint now) {
  const bool rejoin = p.ever_joined;
  if (p.alive) {
    // A new process for this party (a restart), or an old connection gone silent: whatever the old
    // registration was doing is over.
    PCMOE_INFO("hub.party_replaced")
        .kv("party", p.id)
        .kv("old_peer", peer_label(p.peer))
        .kv("peer", peer_label(peer));
    registry_.mark_lost(p);
    if (round_) round_->drop(p.index);
    round_lose(p.index, now);
    if (scheduler_.active() && scheduler_.active()->party == p.index) {
      scheduler_.abandon();
      notice_turn_over();
      PCMOE_WARN("hub.turn_abandoned")
          .kv("party", p.id)
          .kv("reason", "party re-registered")
          .kv("step", step_);
    }
  }
  registry_.join(p, peer, curve_key, h, now);
  p.session = os_random_u64();
  registry_.bump_epoch();
  send(peer, welcome_for(p));
  send(peer, current_turn_notice());  // what its expert host admits
  PCMOE_INFO("hub.party_joined")
      .kv("party", p.id)
      .kv("index", p.index)
      .kv("endpoint", clip(p.endpoint, 200))
      .kv("rejoin", rejoin)
      .kv("resume_step", h.resume_step)
      .kv("step", step_)
      .kv("live", registry_.live_count())
      .kv("epoch", registry_.epoch())
      .kv("peer", peer_label(peer));
  if (h.resume_step > step_) {
    if (resumed_ && phase_ == Phase::waiting) {
      fast_forward(p, h.resume_step);
    } else {
      PCMOE_WARN("hub.resume_ahead").kv("party", p.id).kv("resume_step", h.resume_step).kv("step", step_);
    }
  }
  broadcast_directory(&p);  // its Welcome already carries this epoch
  if (phase_ == Phase::waiting && registry_.all_alive()) begin_training(now);
  if (stop_stage_ == StopStage::awaiting_byes) send(peer, proto::Stop{stop_reason_});
  check_snapshot_round(now);
  advance_stop(now);
  maybe_start_turn(now);
}

void HubState::begin_training(TimePoint now) {
  phase_ = Phase::training;
  PCMOE_INFO("hub.training_started")
      .kv("parties", registry_.size())
      .kv("step", step_)
      .kv("total_steps", cfg_.train.steps)
      .kv("seed", cfg_.hub.seed)
      .kv("steps_per_turn", cfg_.hub.steps_per_turn)
      .kv("paused", paused_);
  // With periodic snapshots, a first pool before any turn: a host lost before the first periodic
  // snapshot still leaves its experts (as initialised, or as restored) to the others' exports.
  if (cfg_.hub.snapshot_every > 0 && pool_.empty()) pending_snapshot_ = true;
  save_state(now);  // a hub killed before its first periodic save still resumes this run
}

void HubState::fast_forward(const PartyRecord& p, int64_t to) {
  const int64_t from = step_;
  const int64_t to_step = std::min<int64_t>(to, cfg_.train.steps);
  const int64_t spt = std::max(1, cfg_.hub.steps_per_turn);
  std::vector<uint32_t> all(registry_.size());
  for (uint32_t i = 0; i < all.size(); ++i) all[i] = i;
  scheduler_.skip(static_cast<size_t>((to_step - from + spt - 1) / spt), all);
  step_ = to_step;
  PCMOE_WARN("hub.fast_forward")
      .kv("party", p.id)
      .kv("from", from)
      .kv("to", step_)
      .kv("reason", "a party trained steps after the saved hub state: they are not trained again");
}

void HubState::broadcast_directory(const PartyRecord* except) {
  broadcast(proto::Directory{registry_.epoch(), registry_.directory()}, except);
}

void HubState::lose_party(PartyRecord& p, const std::string& reason, TimePoint now) {
  if (!registry_.mark_lost(p)) return;
  registry_.bump_epoch();
  PCMOE_WARN("hub.party_lost")
      .kv("party", p.id)
      .kv("index", p.index)
      .kv("reason", reason)
      .kv("step", step_)
      .kv("live", registry_.live_count())
      .kv("epoch", registry_.epoch());
  broadcast_directory(nullptr);  // alive=false: every router masks its experts
  if (round_) {
    round_->drop(p.index);
    check_snapshot_round(now);
  }
  if (checkpoint_wait_.erase(p.index) > 0 && checkpoint_wait_.empty()) {
    PCMOE_INFO("hub.checkpoint_complete").kv("step", checkpoint_step_);
  }
  if (scheduler_.active() && scheduler_.active()->party == p.index) {
    abandon_turn(fmt::format("turn holder '{}' lost", p.id), now);
  }
  round_lose(p.index, now);
  advance_stop(now);
  maybe_start_turn(now);
}

void HubState::check_liveness(TimePoint now) {
  const Millis timeout(cfg_.hub.party_timeout_ms);
  for (uint32_t idx : registry_.silent(now, timeout)) {
    PartyRecord& p = registry_.at(idx);
    lose_party(p,
               fmt::format("silent for {:.0f} ms (hub.party_timeout_ms = {})", ms_between(p.last_seen, now),
                           cfg_.hub.party_timeout_ms),
               now);
  }
}

void HubState::on_bye(PartyRecord& p, const proto::Bye& b, TimePoint now) {
  p.said_bye = true;
  PCMOE_INFO("hub.party_bye").kv("party", p.id).kv("reason", clip(b.reason, 200)).kv("step", step_);
  if (stop_stage_ == StopStage::awaiting_byes || stop_stage_ == StopStage::done) {
    p.state = "bye";  // still serving experts until the release
    advance_stop(now);
    return;
  }
  // Leaving before the end: its experts become unavailable now.
  lose_party(p, fmt::format("said bye: {}", clip(b.reason, 200)), now);
}

}  // namespace pcmoe::hub
