// The pcmoe-party daemon's start-up steps, in order (Daemon::run in daemon.cpp calls them): the
// machine and model checks, keys, the expert service bound, the hub link, hello -> welcome, the
// trainer and its memory limit, the checkpoint restored (or, without one mid-run, the experts
// seeded from the hub's pool), the expert host installed.
#include <fmt/format.h>

#include "common/error.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/machine.h"
#include "common/signals.h"
#include "model/compat.h"
#include "model/footprint.h"
#include "net/context.h"
#include "net/endpoint.h"
#include "party/daemon_impl.h"
#include "train/checkpoint.h"

namespace pcmoe::party {

void Daemon::start_server() {
  net::ServerOptions so;
  so.endpoint = cfg_.party.expert_bind;
  // No ZMTP PINGs from the expert service, as from the hub (hub_server.cpp): the requesters'
  // DEALERs PING and close dead connections; a PING timer here could abort the party.
  so.heartbeat_ivl_ms = 0;
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
  // No routing id of our own: the hub's ROUTER gives this connection one, and the hub knows this
  // party by its key (CURVE) or by the connection its accepted hello came on, never by a name.
  co.heartbeat_ivl_ms = cfg_.party.heartbeat_ms;  // a dead hub connection is closed and made again
  co.heartbeat_timeout_ms = net::zmtp_heartbeat_timeout_ms(cfg_.party.heartbeat_ms);
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
  execute(session_->start(train::checkpoint_step(checkpointer_->path()), Clock::now()));
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
  lo.links_per_host = cfg_.party.links_per_host;
  lo.curve = keys_;
  lo.limits = limits_;
  links_ = std::make_unique<PeerLinks>(ctx_, lo);
  links_->set_lost_probe([link = hub_.get()](uint32_t host) { return link->party_lost(host); });
  trainer_ = std::make_unique<PartyTrainer>(cfg_, seed_, placement, *links_);
  trainer_->set_concurrent(w.schedule == "concurrent");
  // A 1.2 hub (its welcome carries a session token) tells every party who holds each turn: the
  // expert host admits train requests only from the holder, for the steps of its turn.
  if (w.session != 0) trainer_->host().set_turn_probe([link = hub_.get()] { return link->current_turn(); });
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
  const auto step = trainer_->restore_checkpoint(checkpointer_->path());
  apply_directory(w.directory);
  execute(session_->resumed_at(step.value_or(0), Clock::now()));  // act::Serve, maybe after seeding
  PCMOE_INFO("party.joined")
      .kv("index", static_cast<int64_t>(w.party_index))
      .kv("parties", static_cast<int64_t>(w.directory.size()))
      .kv("expert_endpoint", server_->endpoint())
      .kv("backbone_params", trainer_->backbone_params())
      .kv("expert_params", trainer_->expert_params())
      .kv("run_id", w.run_id);
}

void Daemon::install_host() { server_->install(&trainer_->host()); }

void Daemon::seed_experts(const proto::Pool& pool) {
  if (pool.step < 0) return;  // no pool: the hosted experts keep their initial weights
  const int n = trainer_->load_hosted_experts(pool);
  PCMOE_WARN("party.experts_from_pool").kv("pool_step", pool.step).kv("tensors", static_cast<int64_t>(n));
}

void Daemon::prepare() {
  model::set_threads(cfg_.run.threads);
  const torch::Device device = model::parse_device(cfg_.run.device);
  model::check_model_fits(
      cfg_.model, device.is_cuda() ? model::device_total_memory(device) : machine::physical_memory_bytes(),
      cfg_.run.device);
  fs::make_dirs(cfg_.run.out_dir);
  checkpointer_ =
      std::make_unique<Checkpointer>(fs::join(cfg_.run.out_dir, "checkpoint.pcmoe"),
                                     [this](const std::string& p) { trainer_->save_checkpoint(p); });
  limits_.d_model = cfg_.model.d_model;
  limits_.max_rows = static_cast<int64_t>(cfg_.train.batch_size) * cfg_.model.seq_len * cfg_.model.top_k;
  seed_ = log_party_start(cfg_);
  if (cfg_.curve()) keys_ = net::read_key_file(cfg_.party.curve.secret_key_file);
}

}  // namespace pcmoe::party
