// HubState: construction, message dispatch and access rules, error replies, heartbeats, ticks,
// status and the state file (see hub_state.h; the handlers live in hub_membership.cpp,
// hub_turns.cpp and hub_control.cpp).
#include "hub/hub_state.h"

#include <fmt/format.h>

#include "common/log.h"
#include "hub/json_matrix.h"
#include "hub/text.h"

namespace pcmoe::hub {

using proto::ErrorCode;
using proto::MsgType;

HubState::HubState(const HubConfig& cfg, HubStore& store, std::string run_id, TimePoint now,
                   HubOptions options)
    : cfg_(cfg),
      store_(store),
      options_(std::move(options)),
      run_id_(std::move(run_id)),
      model_hash_(model_config_hash(cfg.model, cfg.train)),
      started_(now),
      registry_(cfg.hub.parties),
      layout_(cfg.model, static_cast<uint32_t>(cfg.hub.parties.size())),
      scheduler_(cfg.hub.seed, static_cast<uint32_t>(std::max(1, cfg.hub.steps_per_turn))),
      load_(layout_.moe_layers().size(), layout_.n_experts(),
            static_cast<size_t>(std::max(1, cfg.hub.load_window_steps))),
      pool_(layout_),
      last_stats_(now) {}

bool HubState::accepts(MsgType type) {
  switch (type) {
    case MsgType::hello:
    case MsgType::step_report:
    case MsgType::turn_done:
    case MsgType::heartbeat:
    case MsgType::status_request:
    case MsgType::control:
    case MsgType::checkpoint_done:
    case MsgType::snapshot:
    case MsgType::pool_request:
    case MsgType::bye:
    case MsgType::error:
    case MsgType::round_norm:
    case MsgType::round_commit_ack:
      return true;
    default:
      return false;
  }
}

std::string_view HubState::state_name() const {
  switch (phase_) {
    case Phase::waiting:
      return paused_ ? "paused" : "waiting";
    case Phase::training:
      return paused_ ? "paused" : "training";
    case Phase::stopping:
      return "stopping";
    case Phase::finished:
      return "finished";
  }
  return "unknown";
}

std::optional<uint64_t> HubState::snapshot_round() const {
  if (!round_) return std::nullopt;
  return round_->id();
}

// ---- inputs ----

std::vector<Outgoing> HubState::on_message(const std::string& peer, const std::string& curve_key,
                                           const proto::Message& m, TimePoint now) {
  ++msgs_in_;
  PartyRecord* self = registry_.find_alive_peer(peer);
  // With CURVE, a routing id taken over by a connection with another key does not speak for the party.
  if (self != nullptr && options_.curve && curve_key != self->curve_key) self = nullptr;
  if (self != nullptr) registry_.touch(*self, now);  // any message counts as a sign of life
  dispatch(self, peer, curve_key, m, now);
  return take();
}

std::vector<Outgoing> HubState::on_decode_error(const std::string& peer, const proto::DecodeError& e,
                                                TimePoint now) {
  ++msgs_in_;
  if (PartyRecord* self = registry_.find_alive_peer(peer)) registry_.touch(*self, now);
  refuse(peer, e.type, e.code, e.reason(), now);
  if (!out_.empty()) std::get<proto::ErrorMsg>(out_.back().message).request_id = e.request_id;
  return take();
}

void HubState::dispatch(PartyRecord* self, const std::string& peer, const std::string& curve_key,
                        const proto::Message& m, TimePoint now) {
  const MsgType type = proto::type_of(m);
  if (!accepts(type)) {
    const bool expert_traffic = static_cast<uint16_t>(type) >= static_cast<uint16_t>(MsgType::expert_forward);
    refuse(peer, type, ErrorCode::unknown_type,
           expert_traffic
               ? fmt::format("the hub takes no part in expert traffic: {} goes from party to party",
                             proto::msg_type_name(type))
               : fmt::format("{} is sent by the hub, never to it", proto::msg_type_name(type)),
           now);
    return;
  }
  switch (type) {
    case MsgType::hello:
      return on_hello(peer, curve_key, std::get<proto::Hello>(m), now);
    case MsgType::status_request:
      if (operator_of(curve_key).empty()) {
        refuse(peer, type, ErrorCode::unknown_party,
               "status needs an operator key (hub.operators, hub.ctl_key_file): pcmoe-ctl --key FILE", now);
        return;
      }
      return send(peer, status(now, std::get<proto::StatusRequest>(m).include_load));
    case MsgType::control:
      return on_control(peer, curve_key, std::get<proto::Control>(m), now);
    case MsgType::error:
      return on_party_error(self, peer, std::get<proto::ErrorMsg>(m), now);
    default:
      break;
  }
  if (self == nullptr) {
    const PartyRecord* lost = registry_.find_lost_peer(peer);
    refuse(peer, type, ErrorCode::unknown_party,
           lost != nullptr
               ? fmt::format("party '{}' was marked lost: send hello to rejoin", lost->id)
               : fmt::format("{} needs a registered party: send hello first", proto::msg_type_name(type)),
           now);
    return;
  }
  switch (type) {
    case MsgType::heartbeat:
      return on_heartbeat(*self, peer, std::get<proto::Heartbeat>(m));
    case MsgType::step_report:
      return on_step_report(*self, peer, std::get<proto::StepReport>(m), now);
    case MsgType::turn_done:
      return on_turn_done(*self, peer, std::get<proto::TurnDone>(m), now);
    case MsgType::snapshot:
      return on_snapshot(*self, peer, std::get<proto::Snapshot>(m), now);
    case MsgType::pool_request: {
      // "The latest complete pool with step >= minstep": none (step -1) if the latest is older.
      const int64_t min_step = std::get<proto::PoolRequest>(m).min_step;
      return send(peer, pool_.step() >= min_step ? pool_.message() : proto::Pool{});
    }
    case MsgType::bye:
      return on_bye(*self, std::get<proto::Bye>(m), now);
    case MsgType::checkpoint_done:
      return on_checkpoint_done(*self, std::get<proto::CheckpointDone>(m), now);
    case MsgType::round_norm:
      return on_round_norm(*self, peer, std::get<proto::RoundNorm>(m), now);
    case MsgType::round_commit_ack:
      return on_round_commit_ack(*self, peer, std::get<proto::RoundCommitAck>(m), now);
    default:
      return;  // unreachable: accepts() lists exactly the cases above
  }
}

std::string HubState::operator_of(const std::string& curve_key) const {
  if (!options_.curve) return "(any)";  // plain mode: nobody is authenticated
  auto it = options_.operators.find(curve_key);
  return it == options_.operators.end() ? std::string() : it->second;
}

// ---- outputs ----

void HubState::send(const std::string& peer, proto::Message m) {
  ++msgs_out_;
  out_.push_back({peer, std::move(m)});
}

void HubState::broadcast(const proto::Message& m, const PartyRecord* except) {
  for (const auto& p : registry_.parties()) {
    if (p.alive && &p != except) send(p.peer, m);
  }
}

void HubState::refuse(const std::string& peer, MsgType type, ErrorCode code, const std::string& reason,
                      TimePoint now) {
  ++bad_messages_;
  if (limiter_.allow(peer, now)) {
    const PartyRecord* p = registry_.find_alive_peer(peer);
    PCMOE_WARN("hub.bad_message")
        .kv("peer", peer_label(peer))
        .kv("party", p != nullptr ? p->id : std::string())
        .kv("type", proto::msg_type_name(type))
        .kv("code", proto::error_code_name(code))
        .kv("reason", clip(reason, 200));
  }
  send(peer, proto::ErrorMsg{static_cast<uint16_t>(code), reason, static_cast<uint16_t>(type), 0});
}

std::vector<Outgoing> HubState::take() {
  std::vector<Outgoing> out;
  out.swap(out_);
  return out;
}

// ---- small handlers ----

void HubState::on_heartbeat(PartyRecord& p, const std::string& peer, const proto::Heartbeat& h) {
  if (!p.said_bye) p.state = clip(h.state, 32);
  // seq is echoed, so the party can match answers to its heartbeats.
  send(peer, proto::Heartbeat{h.seq, step_, std::string(state_name())});
}

void HubState::on_party_error(const PartyRecord* p, const std::string& peer, const proto::ErrorMsg& e,
                              TimePoint now) {
  // Never answered (an error about an error could ping-pong); logged, rate-limited.
  if (!limiter_.allow(peer, now)) return;
  PCMOE_WARN("hub.party_error")
      .kv("peer", peer_label(peer))
      .kv("party", p != nullptr ? p->id : std::string())
      .kv("code", proto::error_code_name(static_cast<ErrorCode>(e.code)))
      .kv("reason", clip(e.reason, 200))
      .kv("in_reply_to", proto::msg_type_name(static_cast<MsgType>(e.in_reply_to)));
}

void HubState::note_transport(uint64_t bytes_in, uint64_t bytes_out, uint64_t send_failures) {
  bytes_in_ = bytes_in;
  bytes_out_ = bytes_out;
  send_failures_ = send_failures;
}

// ---- time ----

std::vector<Outgoing> HubState::on_tick(TimePoint now) {
  check_liveness(now);
  check_snapshot_round(now);
  check_checkpoint(now);
  check_round(now);
  advance_stop(now);
  maybe_start_turn(now);
  limiter_.flush(now);
  if (now - last_stats_ >= options_.timeouts.stats_interval) log_stats(now);
  return take();
}

void HubState::log_stats(TimePoint now) {
  last_stats_ = now;
  const auto& turn = scheduler_.active();
  // Which party is slow: each one's recent step time, and the live party with the largest mean.
  JsonObject mean_ms, last_ms;
  std::string slowest;
  double slowest_ms = -1;
  for (const auto& p : registry_.parties()) {
    mean_ms.add(p.id, p.step_times.mean_ms());
    last_ms.add(p.id, p.step_times.last_ms());
    if (p.alive && p.step_times.mean_ms() > slowest_ms) {
      slowest_ms = p.step_times.mean_ms();
      slowest = p.id;
    }
  }
  PCMOE_INFO("hub.stats")
      .kv("state", state_name())
      .kv("step", step_)
      .kv("total_steps", cfg_.train.steps)
      .kv("live", registry_.live_count())
      .kv("parties", registry_.size())
      .kv("turn_party", turn ? registry_.at(turn->party).id : std::string())
      .kv("msgs_in", msgs_in_)
      .kv("msgs_out", msgs_out_)
      .kv("bad_messages", bad_messages_)
      .kv("log_suppressed", limiter_.suppressed_total())
      .kv("bytes_in", bytes_in_)
      .kv("bytes_out", bytes_out_)
      .kv("send_failures", send_failures_)
      .kv("pool_step", pool_.step())
      .kv("step_ms_mean", mean_ms)
      .kv("step_ms_last", last_ms)
      .kv("slowest", slowest);
}

// ---- status and state file ----

proto::Status HubState::status(TimePoint now, bool include_load) const {
  proto::Status s;
  s.run_id = run_id_;
  s.state = std::string(state_name());
  s.step = step_;
  s.total_steps = cfg_.train.steps;
  if (const auto& t = scheduler_.active()) s.turn_party = registry_.at(t->party).id;
  if (open_round_) s.turn_party = "*";  // a concurrent round: every live party
  s.uptime_s = ms_between(started_, now) / 1e3;
  s.parties = registry_.statuses(now);
  s.moe_layers = layout_.moe_layers();
  s.placement = layout_.placement();
  if (include_load) {
    s.load_running = load_.running_shares();
    s.load_window = load_.window_shares();
  }
  s.pool_step = pool_.step();
  return s;
}

std::string HubState::state_json(TimePoint now) const {
  JsonObject j;
  j.add("run_id", run_id_).add("state", state_name()).add("saved_at", log::utc_timestamp());
  j.add("step", step_).add("total_steps", cfg_.train.steps).add("model_hash", model_hash_);
  j.add("seed", cfg_.hub.seed).add("steps_per_turn", cfg_.hub.steps_per_turn);
  j.add("round", scheduler_.round()).add("turn_index", static_cast<uint64_t>(scheduler_.position()));
  j.add("turns_issued", scheduler_.turns_issued());
  std::vector<int64_t> order(scheduler_.order().begin(), scheduler_.order().end());
  j.add("round_order", order).add("directory_epoch", registry_.epoch());
  j.add("pool_step", pool_.step()).add("snapshot_id", snapshot_seq_).add("stop_reason", stop_reason_);
  j.add("uptime_s", ms_between(started_, now) / 1e3);
  // Who hosts which expert (party index per MoE layer and expert): for plots and tools, not read back.
  std::vector<int64_t> moe_layers(layout_.moe_layers().begin(), layout_.moe_layers().end());
  j.add("moe_layers", moe_layers).add_raw("placement", json_matrix(layout_.placement()));
  JsonObject load;
  load.add("steps", load_.steps()).add("window_steps", static_cast<uint64_t>(load_.window_steps()));
  load.add("window_fill", static_cast<uint64_t>(load_.window_fill()));
  load.add_raw("running_counts", json_matrix(load_.running_counts()));
  load.add_raw("window_counts", json_matrix(load_.window_counts()));
  load.add_raw("running", json_matrix(load_.running_shares()));
  load.add_raw("window", json_matrix(load_.window_shares()));
  j.add("load", load);
  std::vector<JsonObject> parties;
  for (const auto& p : registry_.parties()) {
    JsonObject o;
    o.add("id", p.id).add("index", p.index).add("alive", p.alive).add("state", p.state);
    o.add("joins", p.joins).add("steps_done", p.totals.steps_done).add("tokens", p.totals.tokens);
    o.add("last_loss", p.totals.last_loss).add("last_eval_loss", p.totals.last_eval_loss);
    o.add("peak_memory_bytes", p.totals.peak_memory_bytes).add("bytes_sent", p.totals.bytes_sent);
    o.add("bytes_received", p.totals.bytes_received).add("said_bye", p.said_bye);
    o.add("step_ms_mean", p.step_times.mean_ms());  // this hub process's recent steps; not read back
    parties.push_back(std::move(o));
  }
  j.add("parties", parties);
  return j.str();
}

bool HubState::save_state(TimePoint now) {
  try {
    store_.write_state(state_json(now));
    state_saved_step_ = step_;
    return true;
  } catch (const std::exception& e) {
    PCMOE_ERROR("hub.write_failed").kv("what", "hub_state.json").kv("error", e.what());
    return false;
  }
}

}  // namespace pcmoe::hub
