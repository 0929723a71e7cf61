// The pcmoe-party daemon (see daemon.h): start-up as a list of steps (daemon_startup.cpp), then the
// main loop that feeds the PartySession and carries out what it asks. The hub link's thread heartbeats the
// whole time, so nothing here needs to interleave hub work with training.
#include "party/daemon.h"

#include <fmt/format.h>

#include <map>

#include "common/error.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/signals.h"
#include "common/trace.h"
#include "party/daemon_impl.h"

namespace pcmoe::party {

int Daemon::run() {
  prepare();       // threads, output folder, limits, private seed, keys
  start_server();  // the expert service is bound: its endpoint goes into the hello
  connect_hub();   // the hub link's thread runs from here on
  join();          // hello -> welcome (or a fatal refusal)
  if (!exit_) {
    build_trainer(*welcome_);  // backbone, shard, optimizers, footprint, memory limit
    serve(*welcome_);          // checkpoint restored, directory applied, requests answered
  }
  while (!exit_) {
    if (signals::stop_requested()) {
      PCMOE_INFO("party.signal").kv("signal", static_cast<int64_t>(signals::stop_signal()));
      execute(session_->on_signal(Clock::now()));
      break;
    }
    pump(0);  // what arrived during the last step is applied here, at the step boundary
    if (exit_) break;
    if (checkpointer_->retry_due(Clock::now())) checkpointer_->write(Clock::now());
    if (auto order = session_->begin_step()) {
      run_step(*order);
    } else {
      pump(50);
    }
  }
  server_->stop();
  PCMOE_INFO("party.exit").kv("code", static_cast<int64_t>(exit_code_));
  return exit_code_;
}

// One message from the hub (all that arrived, without waiting, after the first) or a tick.
void Daemon::pump(int timeout_ms) {
  // Between the welcome and the trainer's build nothing more is taken from the link: what the hub
  // sends right after a welcome (a snapshot request, a stop) waits for a trainer to answer it.
  const auto building = [this] { return welcome_.has_value() && !trainer_; };
  for (auto r = hub_->poll(timeout_ms); r && !exit_; r = building() ? std::nullopt : hub_->poll(0)) {
    execute(session_->on_message(r->message, r->at));
  }
  if (!exit_ && !building()) {
    execute(session_->on_tick(Clock::now(), hub_->last_heard(), hub_->refused(), hub_->server_key_suspect()));
  }
}

void Daemon::run_step(const StepOrder& order) {
  hub_->set_heartbeat(true, "training", order.step);
  std::vector<Action> next;
  try {
    next = session_->step_done(trainer_->train_step(order.step, order.turn_id).report, Clock::now());
  } catch (const Error& e) {
    const auto* host = dynamic_cast<const HostError*>(&e);
    next = session_->step_failed(e.what(), host ? links_->peer_id(host->host()) : "", Clock::now());
  }
  execute(std::move(next));
}

void Daemon::execute(std::vector<Action> actions) {
  for (auto& a : actions) execute_one(a);
  if (session_->joined()) hub_->set_heartbeat(true, session_->heartbeat_state(), session_->heartbeat_step());
}

void Daemon::execute_one(Action& a) {
  if (auto* s = std::get_if<act::Send>(&a)) {
    hub_->send(std::move(s->message), s->timeout_ms);
  } else if (auto* j = std::get_if<act::Join>(&a)) {
    welcome_ = j->welcome;
  } else if (std::holds_alternative<act::Serve>(a)) {
    install_host();
  } else if (auto* sd = std::get_if<act::SeedExperts>(&a)) {
    seed_experts(sd->pool);
  } else if (auto* d = std::get_if<act::ApplyDirectory>(&a)) {
    apply_directory(d->directory);
  } else if (auto* l = std::get_if<act::UpdateLoad>(&a)) {
    if (cfg_.model.router.balance_bias_rate > 0) trainer_->update_balance_bias(l->window);
  } else if (auto* c = std::get_if<act::Checkpoint>(&a)) {
    checkpoint(c->hub_step);
  } else if (auto* sn = std::get_if<act::SendSnapshot>(&a)) {
    hub_->send(trainer_->snapshot(sn->snapshot_id, sn->step));
  } else if (std::holds_alternative<act::PrepareFinish>(a)) {
    prepare_finish();
  } else if (auto* e = std::get_if<act::Export>(&a)) {
    export_model(e->pool);
  } else if (auto* f = std::get_if<act::Finished>(&a)) {
    trainer_->log_done(final_loss_, final_bpb_, f->exported ? fs::join(cfg_.run.out_dir, "model.pcmoe") : "");
  } else if (auto* r = std::get_if<act::HostRound>(&a)) {
    if (auto reply = trainer_->host().on_round_message(r->message)) hub_->send(std::move(*reply));
  } else if (auto* x = std::get_if<act::Exit>(&a)) {
    exit_ = true;
    exit_code_ = x->code;
  } else if (auto* fl = std::get_if<act::Fail>(&a)) {
    if (fl->kind == act::FailKind::config) throw ConfigError(fl->message);
    if (fl->kind == act::FailKind::protocol) throw ProtocolError(fl->message);
    throw TransportError(fl->message);
  }
}

void Daemon::apply_directory(const std::vector<proto::PartyEntry>& dir) {
  links_->update(dir);
  trainer_->apply_directory(dir);
  std::map<std::string, std::string> keys;
  for (const auto& e : dir) keys[e.curve_public_key] = e.party_id;
  server_->set_parties(keys);
}

void Daemon::checkpoint(const std::optional<int64_t>& hub_step) {
  // A failed write is logged and retried; it never ends the daemon (checkpointer.h).
  const std::string error = checkpointer_->write(Clock::now());
  if (hub_step) execute(session_->checkpoint_done(*hub_step, error.empty(), checkpointer_->path(), error));
}

void Daemon::prepare_finish() {
  // The final evaluation calls the other parties' experts; if one is gone, finish anyway
  // (checkpoint, export, bye) and say so: the others must not wait for this party's bye.
  try {
    std::tie(final_loss_, final_bpb_) = trainer_->evaluate();
  } catch (const Error& e) {
    PCMOE_WARN("party.eval_failed").kv("step", trainer_->last_step() + 1).kv("error", e.what());
  }
  if (cfg_.run.save_on_exit) checkpoint(std::nullopt);
  execute(session_->finish_prepared(Clock::now()));
}

void Daemon::export_model(const proto::Pool& pool) {
  bool ok = true;
  try {
    std::vector<std::string> ids;  // the hosts by index, to say how old each one's experts are
    for (const auto& e : welcome_->directory) ids.push_back(e.party_id);
    trainer_->export_model(fs::join(cfg_.run.out_dir, "model.pcmoe"), pool, ids);
  } catch (const Error& e) {
    PCMOE_ERROR("party.export_failed").kv("error", e.what());
    ok = false;
  }
  execute(session_->exported(ok, Clock::now()));
}

int run_party(const PartyConfig& cfg) {
  trace::set_name(cfg.party.id);  // PCMOE_TRACE only (a benchmark's request trace)
  int rc = 0;
  {
    Daemon d(cfg);
    rc = d.run();
  }
  trace::flush();
  return rc;
}

}  // namespace pcmoe::party
