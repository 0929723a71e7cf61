// A party's side of the hub protocol, socket-free (see party_session.h).
#include "party/party_session.h"

#include <fmt/format.h>

#include <algorithm>

#include "common/log.h"

namespace pcmoe::party {
namespace {

using Millis = std::chrono::milliseconds;

double ms_between(PartySession::TimePoint a, PartySession::TimePoint b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

}  // namespace

SessionOptions session_options(const PartyConfig& cfg, const std::string& public_key) {
  SessionOptions so;
  so.hub_endpoint = cfg.party.hub;
  so.id_origin = cfg.origins.describe("party.id");
  so.key_file = public_key.empty() ? "" : cfg.party.curve.secret_key_file;
  so.hub_public_key = public_key.empty() ? "" : cfg.party.curve.hub_public_key;
  so.public_key = public_key;
  for (int l : cfg.model.moe_layer_indices()) so.moe_layers.push_back(static_cast<uint32_t>(l));
  so.n_experts = static_cast<uint32_t>(cfg.model.n_experts);
  so.hub_timeout_ms = cfg.party.hub_timeout_ms;
  so.heartbeat_ms = cfg.party.heartbeat_ms;
  so.unanswered_ms = std::max(5 * cfg.party.heartbeat_ms, 5000);
  so.checkpoint_every = cfg.run.checkpoint_every;
  so.save_on_exit = cfg.run.save_on_exit;
  return so;
}

proto::Hello hello_for(const PartyConfig& cfg, const std::string& expert_endpoint,
                       const std::string& public_key) {
  proto::Hello hello;
  hello.party_id = cfg.party.id;
  hello.model_hash = model_config_hash(cfg.model, cfg.train);
  hello.expert_endpoint = expert_endpoint;
  hello.curve_public_key = public_key;
  hello.memory_budget_bytes = cfg.party.memory_limit_mb << 20;
  return hello;
}

PartySession::PartySession(SessionOptions options, proto::Hello hello, TimePoint now)
    : opt_(std::move(options)), hello_(std::move(hello)), started_(now) {}

std::vector<Action> PartySession::take() {
  std::vector<Action> out;
  out.swap(out_);
  return out;
}

void PartySession::fail(act::FailKind kind, std::string message) {
  exited_ = true;
  out_.push_back(act::Fail{kind, std::move(message)});
}

// ---- joining ----

std::vector<Action> PartySession::start(int64_t resume_step, TimePoint now) {
  hello_.resume_step = resume_step;
  last_step_ = resume_step - 1;
  last_hello_ = now;
  out_.push_back(act::Send{hello_, 200});
  return take();
}

void PartySession::on_welcome(const proto::Welcome& w, TimePoint at) {
  last_answer_ = at;
  if (!joined_) {
    if (std::vector<uint32_t>(w.moe_layers.begin(), w.moe_layers.end()) != opt_.moe_layers ||
        w.n_experts != opt_.n_experts) {
      fail(act::FailKind::protocol, "the hub's placement does not match this party's model config");
      return;
    }
    joined_ = true;
    concurrent_ = w.schedule == "concurrent";
    session_ = w.session;
    index_ = w.party_index;
    placement_ = w.placement;
    welcome_step_ = w.step;
    global_step_ = std::max(global_step_, w.step);
    state_ = "serving";
    out_.push_back(act::Join{w});
    return;
  }
  // The answer to rejoin(): the same place in the same federation, the experts available again.
  if (w.party_index != index_ || w.placement != placement_) {
    fail(act::FailKind::protocol,
         fmt::format("the hub welcomed this party back at index {} with another placement (was index {})",
                     w.party_index, index_));
    return;
  }
  global_step_ = std::max(global_step_, w.step);
  session_ = w.session;  // the same token when the hub kept the registration, else a new one
  out_.push_back(act::ApplyDirectory{w.directory});
  PCMOE_INFO("party.rejoined")
      .kv("step", w.step)
      .kv("index", static_cast<int64_t>(w.party_index))
      .kv("run_id", w.run_id);
}

void PartySession::on_reject(const proto::Reject& r) {
  const auto code = static_cast<proto::ErrorCode>(r.code);
  if (joined_) {
    PCMOE_WARN("party.rejoin_refused")
        .kv("code", std::string(proto::error_code_name(code)))
        .kv("reason", r.reason);
    return;
  }
  if (code == proto::ErrorCode::duplicate_party) {
    // Without CURVE the hub waits until the live connection of this id (e.g. this party's previous
    // process) has been silent for its party_timeout_ms: keep asking until hub_timeout_ms.
    PCMOE_WARN("party.join_waiting").kv("code", "duplicate_party").kv("reason", r.reason);
    return;
  }
  std::string msg =
      fmt::format("the hub refused this party ({}): {}", proto::error_code_name(code), r.reason);
  if (code == proto::ErrorCode::unknown_party) {  // the id, or (CURVE) the key, is not the hub's
    msg += fmt::format("; fix party.id ({}){} or the hub's hub.parties", opt_.id_origin,
                       opt_.key_file.empty() ? "" : " / party.curve.secret_key_file");
  }
  const bool config = code == proto::ErrorCode::config_mismatch || code == proto::ErrorCode::unknown_party ||
                      code == proto::ErrorCode::bad_version;
  fail(config ? act::FailKind::config : act::FailKind::transport, msg);
}

void PartySession::rejoin(const std::string& why, TimePoint now) {
  if (last_rejoin_ != TimePoint{} && ms_between(last_rejoin_, now) < opt_.rejoin_min_ms) return;
  last_rejoin_ = now;
  PCMOE_WARN("party.rejoining").kv("reason", why).kv("step", last_step_ + 1);
  proto::Hello h = hello_;
  h.resume_step = last_step_ + 1;
  h.session = session_;  // the hub keeps this registration (and its turn) for the same process
  out_.push_back(act::Send{h, 200});
}

std::vector<Action> PartySession::resumed_at(int64_t step, TimePoint now) {
  last_step_ = std::max(last_step_, step - 1);
  if (step > 0 || welcome_step_ == 0) {
    out_.push_back(act::Serve{});
    return take();
  }
  // Restarted without a checkpoint while the federation trains: its backbone starts again (it was
  // only in the lost checkpoint), but the shared experts it hosts must not: they come from the pool.
  PCMOE_WARN("party.fresh_midrun")
      .kv("step", welcome_step_)
      .kv("reason",
          "no checkpoint, but the federation is at this step: this party's backbone starts from "
          "scratch; the experts it hosts are taken from the hub's pool");
  out_.push_back(act::Send{proto::PoolRequest{0}});
  seed_deadline_ = now + Millis(opt_.pool_timeout_ms);
  return take();
}

void PartySession::end_seeding(const proto::Pool& p) {
  seed_deadline_.reset();
  out_.push_back(act::SeedExperts{p});
  out_.push_back(act::Serve{});
}

// ---- hub messages ----

std::vector<Action> PartySession::on_message(const proto::Message& m, TimePoint at) {
  if (exited_) return {};
  // The federation's global step, as the hub last told it.
  if (auto* h = std::get_if<proto::Heartbeat>(&m)) global_step_ = std::max(global_step_, h->step);
  if (auto* l = std::get_if<proto::ExpertLoad>(&m)) global_step_ = std::max(global_step_, l->step + 1);
  if (auto* t = std::get_if<proto::Turn>(&m)) global_step_ = std::max(global_step_, t->step_begin);
  if (std::holds_alternative<proto::Heartbeat>(m)) {  // liveness only
    last_answer_ = at;
    return take();
  }
  if (!held_.empty() || !applicable_now(m)) {
    held_.emplace_back(m, at);  // applied at the step boundary, or after the turn
    release_held(at);
    return take();
  }
  handle(m, at);
  return take();
}

bool PartySession::applicable_now(const proto::Message& m) const {
  if (running_) return false;
  // Seeding the experts from the pool: nothing that would use them before (the pool itself and
  // hub errors are handled now).
  if (seed_deadline_)
    return std::holds_alternative<proto::Pool>(m) || std::holds_alternative<proto::ErrorMsg>(m);
  // A turn runs to its end before another turn, a stop, a checkpoint or a snapshot round (the hub
  // sends those between turns only; a party keeps that order whatever arrives).
  const bool turn_scoped = std::holds_alternative<proto::Turn>(m) || std::holds_alternative<proto::Stop>(m) ||
                           std::holds_alternative<proto::CheckpointRequest>(m) ||
                           std::holds_alternative<proto::SnapshotRequest>(m);
  return !(turn_ && turn_scoped);
}

void PartySession::handle(const proto::Message& m, TimePoint at) {
  if (auto* w = std::get_if<proto::Welcome>(&m)) {
    on_welcome(*w, at);
  } else if (auto* r = std::get_if<proto::Reject>(&m)) {
    on_reject(*r);
  } else if (!joined_) {
    // Nothing else means anything before the welcome (e.g. a stale answer to an earlier life).
  } else if (auto* t = std::get_if<proto::Turn>(&m)) {
    if (turn_ || finishing_ || finished_) {
      PCMOE_WARN("party.unexpected_turn").kv("turn", t->turn_id).kv("state", state_);
      return;
    }
    turn_ = OpenTurn{*t, 0};
    state_ = "training";
    if (concurrent_) out_.push_back(act::HostRound{m});  // the host admits the round's requests
  } else if (std::holds_alternative<proto::RoundClose>(m)) {
    if (concurrent_) out_.push_back(act::HostRound{m});
  } else if (std::holds_alternative<proto::RoundCommit>(m)) {
    if (!concurrent_) return;
    out_.push_back(act::HostRound{m});
    if (checkpoint_due_) {  // the experts hold the round's update now: a consistent checkpoint
      checkpoint_due_ = false;
      out_.push_back(act::Checkpoint{std::nullopt});
    }
  } else if (auto* d = std::get_if<proto::Directory>(&m)) {
    out_.push_back(act::ApplyDirectory{d->directory});
  } else if (auto* l = std::get_if<proto::ExpertLoad>(&m)) {
    out_.push_back(act::UpdateLoad{l->window});
  } else if (auto* c = std::get_if<proto::CheckpointRequest>(&m)) {
    steps_since_ckpt_ = 0;
    out_.push_back(act::Checkpoint{c->step});
  } else if (auto* s = std::get_if<proto::SnapshotRequest>(&m)) {
    // The snapshot is of the experts as they are now: at the federation's global step.
    out_.push_back(act::SendSnapshot{s->snapshot_id, std::max(global_step_, last_step_ + 1)});
  } else if (auto* st = std::get_if<proto::Stop>(&m)) {
    on_stop(*st, at);
  } else if (auto* e = std::get_if<proto::ErrorMsg>(&m)) {
    on_error(*e, at);
  } else if (auto* p = std::get_if<proto::Pool>(&m)) {
    on_pool(*p);
  } else if (!std::holds_alternative<proto::Heartbeat>(m) && !std::holds_alternative<proto::TurnNotice>(m)) {
    // (Turn notices are for the expert host: HubLink keeps them.)
    PCMOE_WARN("party.unexpected_hub_message")
        .kv("type", std::string(proto::msg_type_name(proto::type_of(m))));
  }
}

void PartySession::on_pool(const proto::Pool& p) {
  if (seed_deadline_) {
    end_seeding(p);
    return;
  }
  if (!pool_deadline_) return;  // a late answer
  pool_deadline_.reset();
  if (p.step >= 0) {
    out_.push_back(act::Export{p});
  } else {
    PCMOE_WARN("party.no_pool")
        .kv("reason", "the hub had no complete expert-pool snapshot; model not exported");
    finalize(false);
  }
}

void PartySession::on_error(const proto::ErrorMsg& e, TimePoint at) {
  const auto code = static_cast<proto::ErrorCode>(e.code);
  if (code == proto::ErrorCode::unknown_party && !finished_) {
    rejoin(e.reason, at);
    return;
  }
  PCMOE_WARN("party.hub_error").kv("code", std::string(proto::error_code_name(code))).kv("reason", e.reason);
}

void PartySession::on_stop(const proto::Stop& s, TimePoint at) {
  if (s.reason == "release") {
    released_ = true;
    if (finished_) {
      exited_ = true;
      out_.push_back(act::Exit{0});
    } else if (pool_deadline_) {
      pool_deadline_.reset();  // everyone is done: no pool will come
      PCMOE_WARN("party.no_pool")
          .kv("reason", "released by the hub before a pool arrived; model not exported");
      finalize(false);
    }
    return;
  }
  if (finishing_ || finished_) return;
  finishing_ = true;
  finish_reason_ = s.reason;
  state_ = "finishing";
  PCMOE_INFO("party.finishing").kv("reason", s.reason);
  out_.push_back(act::PrepareFinish{s.reason});
}

// ---- steps ----

std::optional<StepOrder> PartySession::begin_step() {
  if (!turn_ || running_ || exited_ || turn_->done >= turn_->turn.n_steps) return std::nullopt;
  running_ = true;
  return StepOrder{turn_->turn.step_begin + turn_->done, turn_->turn.turn_id};
}

std::vector<Action> PartySession::step_done(const proto::StepReport& report, TimePoint now) {
  running_ = false;
  last_step_ = std::max(last_step_, report.step);
  out_.push_back(act::Send{report});
  if (turn_) turn_->done += 1;
  if (opt_.checkpoint_every > 0 && ++steps_since_ckpt_ >= opt_.checkpoint_every) {
    steps_since_ckpt_ = 0;
    if (concurrent_) {
      checkpoint_due_ = true;
    } else {
      out_.push_back(act::Checkpoint{std::nullopt});
    }
  }
  if (turn_ && turn_->done >= turn_->turn.n_steps) end_turn(true, "", "");
  release_held(now);
  return take();
}

std::vector<Action> PartySession::step_failed(const std::string& reason, const std::string& suspect,
                                              TimePoint now) {
  running_ = false;
  PCMOE_WARN("party.turn_failed")
      .kv("step", turn_ ? turn_->turn.step_begin + turn_->done : -1)
      .kv("suspect", suspect)
      .kv("reason", reason);
  end_turn(false, reason, suspect);
  release_held(now);
  return take();
}

void PartySession::end_turn(bool ok, const std::string& reason, const std::string& suspect) {
  if (!turn_) return;
  proto::TurnDone td;
  td.turn_id = turn_->turn.turn_id;
  td.steps_done = turn_->done;
  td.ok = ok;
  td.reason = reason;
  td.suspect_party = suspect;
  out_.push_back(act::Send{td});
  turn_.reset();
  if (!finishing_ && !finished_) state_ = "serving";
}

void PartySession::release_held(TimePoint now) {
  // In arrival order; what must wait for the turn's end keeps its place.
  for (auto it = held_.begin(); it != held_.end() && !exited_;) {
    if (!applicable_now(it->first)) {
      ++it;
      continue;
    }
    auto [m, at] = std::move(*it);
    it = held_.erase(it);
    handle(m, at);
    it = held_.begin();  // handling may have opened or ended a turn
  }
}

// ---- checkpoints, the end, time, signals ----

std::vector<Action> PartySession::checkpoint_done(int64_t step, bool ok, const std::string& path,
                                                  const std::string& reason) {
  proto::CheckpointDone done;
  done.step = step;
  done.ok = ok;
  done.path = ok ? path : "";
  done.reason = reason;
  out_.push_back(act::Send{done});
  return take();
}

std::vector<Action> PartySession::finish_prepared(TimePoint now) {
  if (!opt_.save_on_exit) {
    finalize(false);
    return take();
  }
  out_.push_back(act::Send{proto::PoolRequest{}});
  pool_deadline_ = now + Millis(opt_.pool_timeout_ms);
  return take();
}

std::vector<Action> PartySession::exported(bool ok, TimePoint now) {
  finalize(ok);
  return take();
}

void PartySession::finalize(bool exported) {
  out_.push_back(act::Finished{finish_reason_, exported});
  proto::Bye bye;
  bye.reason = finish_reason_;
  out_.push_back(act::Send{bye});
  finished_ = true;
  state_ = "done";
  if (released_) {
    exited_ = true;
    out_.push_back(act::Exit{0});
  }
}

std::vector<Action> PartySession::on_tick(TimePoint now, TimePoint last_heard, bool key_refused,
                                          bool server_key_suspect) {
  if (exited_) return {};
  const double silent_ms = ms_between(last_heard, now);
  if (!joined_) {
    if (key_refused && !opt_.key_file.empty()) {
      // The hub's key list comes from its config: asking again cannot help.
      fail(act::FailKind::config,
           fmt::format(
               "the hub at {} refused this party's CURVE key {} (party.curve.secret_key_file {}): the hub "
               "accepts only the keys in its hub.parties[].public_key; put this public key there for "
               "party '{}', or use the key file whose public key is listed (pcmoe-ctl keygen --out FILE "
               "makes a pair and prints its public key)",
               opt_.hub_endpoint, opt_.public_key, opt_.key_file, hello_.party_id));
    } else if (server_key_suspect && !opt_.key_file.empty()) {
      fail(
          act::FailKind::config,
          fmt::format("the CURVE handshake with the hub at {} keeps failing without an answer: the hub's "
                      "public key configured here ({}, party.curve.hub_public_key or hub_public_key_file) is "
                      "most likely not the key of the hub at this endpoint; pcmoe-hub logs its public key at "
                      "start (hub.started public_key)",
                      opt_.hub_endpoint, opt_.hub_public_key));
    } else if (ms_between(started_, now) > opt_.hub_timeout_ms) {
      fail(act::FailKind::transport,
           fmt::format(
               "no welcome from the hub at {} within {} ms (is pcmoe-hub running? right endpoint and keys?)",
               opt_.hub_endpoint, opt_.hub_timeout_ms));
    } else if (ms_between(last_hello_, now) > opt_.hello_retry_ms) {
      last_hello_ = now;
      out_.push_back(act::Send{hello_, 200});
    }
    return take();
  }
  if (finished_) {
    if (silent_ms > 5.0 * opt_.heartbeat_ms) {
      // Our bye is in and the hub went quiet: it finished (its release may have been lost).
      PCMOE_INFO("party.hub_gone_after_bye").kv("silent_ms", silent_ms);
      exited_ = true;
      out_.push_back(act::Exit{0});
    }
    return take();
  }
  if (silent_ms > opt_.hub_timeout_ms) {
    PCMOE_ERROR("party.hub_lost")
        .kv("error", fmt::format("lost the hub at {}: nothing heard for {} ms", opt_.hub_endpoint,
                                 opt_.hub_timeout_ms));
    out_.push_back(act::Checkpoint{std::nullopt});
    exited_ = true;
    out_.push_back(act::Exit{3});
    return take();
  }
  if (seed_deadline_ && now > *seed_deadline_) {
    PCMOE_WARN("party.no_pool")
        .kv("reason", "no pool from the hub in time: the hosted experts keep their initial weights");
    end_seeding(proto::Pool{});
    release_held(now);
  }
  if (ms_between(last_answer_, now) > opt_.unanswered_ms) {
    // The hub does not answer our heartbeats although something may still arrive (its answers go
    // elsewhere, or our connection was made again): say hello again on this session.
    last_answer_ = now;
    last_rejoin_ = TimePoint{};
    rejoin(fmt::format("no answer to {} ms of heartbeats", opt_.unanswered_ms), now);
  }
  if (pool_deadline_ && now > *pool_deadline_) {
    pool_deadline_.reset();
    PCMOE_WARN("party.no_pool").kv("reason", "no pool from the hub in time; model not exported");
    finalize(false);
  }
  return take();
}

std::vector<Action> PartySession::on_signal(TimePoint now) {
  if (exited_) return {};
  if (!joined_) {
    fail(act::FailKind::transport, "stopped by a signal before joining the federation");
    return take();
  }
  exited_ = true;
  if (!finished_) {
    end_turn(false, "party stopping (signal)", "");
    out_.push_back(act::Checkpoint{std::nullopt});
    proto::Bye bye;
    bye.reason = "signal";
    out_.push_back(act::Send{bye});
  }
  out_.push_back(act::Exit{0});
  return take();
}

}  // namespace pcmoe::party
