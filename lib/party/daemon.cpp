// The pcmoe-party daemon (see daemon.h): start-up as a list of steps, then the main loop that
// feeds the PartySession and carries out what it asks. The hub link's thread heartbeats the whole
// time, so nothing here needs to interleave hub work with training.
#include "party/daemon.h"

#include <fmt/format.h>

#include <map>

#include "common/error.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/signals.h"
#include "model/compat.h"
#include "net/context.h"
#include "net/curve.h"
#include "net/endpoint.h"
#include "party/expert_server.h"
#include "party/hub_link.h"
#include "party/party_session.h"
#include "party/peer_links.h"
#include "party/trainer.h"
#include "train/checkpoint.h"

namespace pcmoe::party {
namespace {

using Clock = std::chrono::steady_clock;

class Daemon {
 public:
  explicit Daemon(const PartyConfig& cfg) : cfg_(cfg), ctx_(net::default_context()) {}
  int run();

 private:
  // ---- start-up steps ----
  void prepare();
  void start_server();
  void connect_hub();
  void join();
  void build_trainer(const proto::Welcome& w);
  void serve(const proto::Welcome& w);
  // ---- the loop ----
  void pump(int timeout_ms);
  void run_step(const StepOrder& order);
  void execute(std::vector<Action> actions);
  void execute_one(Action& a);
  void apply_directory(const std::vector<proto::PartyEntry>& dir);
  void checkpoint(const std::optional<int64_t>& hub_step);
  void prepare_finish();
  void export_model(const proto::Pool& pool);

  PartyConfig cfg_;
  zmq::context_t& ctx_;
  std::optional<net::CurveKeyPair> keys_;
  proto::Limits limits_;
  std::unique_ptr<ExpertServer> server_;
  std::unique_ptr<HubLink> hub_;
  std::unique_ptr<PartySession> session_;
  std::unique_ptr<PeerLinks> links_;
  std::unique_ptr<PartyTrainer> trainer_;
  std::optional<proto::Welcome> welcome_;
  std::string checkpoint_path_;
  uint64_t seed_ = 0;
  double final_loss_ = -1, final_bpb_ = -1;
  bool exit_ = false;
  int exit_code_ = kExitOk;
};

void Daemon::start_server() {
  net::ServerOptions so;
  so.endpoint = cfg_.party.expert_bind;
  if (keys_) {
    so.curve = keys_;
    so.allowed_client_keys = {keys_->public_key};  // nobody else until the directory arrives
  }
  so.max_message_bytes = static_cast<int64_t>(limits_.max_rows) * cfg_.model.d_model * 4 + (1 << 20);
  at_config_key(cfg_.origins, "party.expert_bind",
                [&] { server_ = std::make_unique<ExpertServer>(ctx_, so, limits_); });
  server_->start();
}

void Daemon::connect_hub() {
  net::ClientOptions co;
  co.endpoint = cfg_.party.hub;
  if (keys_) {
    co.curve = keys_;
    co.server_public_key = cfg_.party.curve.hub_public_key;
  }
  co.routing_id = "party-" + cfg_.party.id;
  at_config_key(cfg_.origins, "party.hub",
                [&] { hub_ = std::make_unique<HubLink>(ctx_, co, limits_, cfg_.party.heartbeat_ms); });
  const std::string public_key = keys_ ? keys_->public_key : "";
  const std::string endpoint = cfg_.party.expert_advertise.empty()
                                   ? net::advertised_endpoint(server_->endpoint())
                                   : cfg_.party.expert_advertise;
  session_ = std::make_unique<PartySession>(session_options(cfg_, public_key),
                                            hello_for(cfg_, endpoint, public_key), Clock::now());
}

void Daemon::join() {
  execute(session_->start(train::checkpoint_step(checkpoint_path_), Clock::now()));
  while (!welcome_ && !exit_) {
    if (signals::stop_requested()) {
      execute(session_->on_signal(Clock::now()));
    } else {
      pump(100);
    }
  }
}

void Daemon::build_trainer(const proto::Welcome& w) {
  Placement placement;
  placement.self = w.party_index;
  placement.n_parties = static_cast<uint32_t>(w.directory.size());
  placement.moe_layers.assign(w.moe_layers.begin(), w.moe_layers.end());
  placement.host = w.placement;
  PeerLinksOptions lo;
  lo.self = w.party_index;
  lo.request_timeout_ms = cfg_.party.request_timeout_ms;
  lo.curve = keys_;
  lo.limits = limits_;
  links_ = std::make_unique<PeerLinks>(ctx_, lo);
  links_->set_lost_probe([link = hub_.get()](uint32_t host) { return link->party_lost(host); });
  trainer_ = std::make_unique<PartyTrainer>(cfg_, seed_, placement, *links_);
  trainer_->set_concurrent(w.schedule == "concurrent");
  trainer_->log_footprint(cfg_.party.memory_limit_mb << 20);
  try {
    trainer_->apply_memory_limit(cfg_.party.memory_limit_mb << 20);
  } catch (const ConfigError&) {
    proto::Bye bye;
    bye.reason = "memory limit too small";
    hub_->send(bye);
    hub_.reset();  // sends what is queued, then closes
    throw;
  }
}

void Daemon::serve(const proto::Welcome& w) {
  if (auto step = trainer_->restore_checkpoint(checkpoint_path_)) session_->resumed_at(*step);
  apply_directory(w.directory);
  server_->install(&trainer_->host());
  PCMOE_INFO("party.joined")
      .kv("index", static_cast<int64_t>(w.party_index))
      .kv("parties", static_cast<int64_t>(w.directory.size()))
      .kv("expert_endpoint", server_->endpoint())
      .kv("backbone_params", trainer_->backbone_params())
      .kv("expert_params", trainer_->expert_params())
      .kv("run_id", w.run_id);
}

void Daemon::prepare() {
  model::set_threads(cfg_.run.threads);
  fs::make_dirs(cfg_.run.out_dir);
  checkpoint_path_ = fs::join(cfg_.run.out_dir, "checkpoint.pcmoe");
  limits_.d_model = cfg_.model.d_model;
  limits_.max_rows = static_cast<int64_t>(cfg_.train.batch_size) * cfg_.model.seq_len * cfg_.model.top_k;
  seed_ = log_party_start(cfg_);
  if (!cfg_.party.curve.secret_key_file.empty()) keys_ = net::read_key_file(cfg_.party.curve.secret_key_file);
}

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
// Between the welcome and a built trainer nothing more is taken: what follows the welcome (a
// directory, a turn) waits in the link until the trainer exists to apply it.
void Daemon::pump(int timeout_ms) {
  for (auto r = hub_->poll(timeout_ms); r && !exit_;
       r = welcome_ && !trainer_ ? std::nullopt : hub_->poll(0)) {
    execute(session_->on_message(r->message, r->at));
  }
  if (!exit_) execute(session_->on_tick(Clock::now(), hub_->last_heard(), hub_->refused()));
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
  std::string error;
  try {
    trainer_->save_checkpoint(checkpoint_path_);
  } catch (const Error& e) {
    if (!hub_step) throw;
    error = e.what();
  }
  if (hub_step) execute(session_->checkpoint_done(*hub_step, error.empty(), checkpoint_path_, error));
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
    trainer_->export_model(fs::join(cfg_.run.out_dir, "model.pcmoe"), pool);
  } catch (const Error& e) {
    PCMOE_ERROR("party.export_failed").kv("error", e.what());
    ok = false;
  }
  execute(session_->exported(ok, Clock::now()));
}

}  // namespace

int run_party(const PartyConfig& cfg) {
  Daemon d(cfg);
  return d.run();
}

}  // namespace pcmoe::party
