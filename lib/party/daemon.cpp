// The pcmoe-party daemon (see daemon.h).
#include "party/daemon.h"

#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <deque>
#include <functional>
#include <set>
#include <tuple>

#include "common/background.h"
#include "common/error.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/signals.h"
#include "common/tensor_file.h"
#include "model/compat.h"
#include "net/context.h"
#include "net/curve.h"
#include "net/endpoint.h"
#include "net/rpc.h"
#include "party/expert_server.h"
#include "party/peer_links.h"
#include "party/trainer.h"

namespace pcmoe::party {
namespace {

using Clock = std::chrono::steady_clock;

int64_t ms_since(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count();
}

// Runs f(), reporting a bad or unusable endpoint where the operator set it
// ("party.yaml:4: key 'party.hub': bad endpoint ...").
template <class F>
void with_endpoint_key(const PartyConfig& cfg, const std::string& key, F&& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    throw ConfigError(fmt::format("{}: {}", cfg.origins.describe(key), e.what()));
  } catch (const TransportError& e) {
    throw TransportError(fmt::format("{}: {}", cfg.origins.describe(key), e.what()));
  }
}

class Daemon {
 public:
  explicit Daemon(const PartyConfig& cfg) : cfg_(cfg), ctx_(net::default_context()) {}
  int run();

 private:
  void start_server();
  void connect_hub();
  proto::Hello hello_message(int64_t resume_step) const;
  proto::Welcome join();
  // The hub marked this party lost (silent too long) or does not know it (restarted) while it
  // runs: say hello again (PROTOCOL.md section 8); the Welcome is handled by handle_hub.
  void rejoin(const std::string& why);
  void apply_directory(const std::vector<proto::PartyEntry>& dir);
  void send_hub(const proto::Message& m);
  // The next message from the hub within timeout_ms (nullopt on timeout, or after logging a
  // message that did not decode); any message counts as a sign of the hub's life.
  std::optional<proto::Message> recv_hub(int timeout_ms);
  // Heartbeats and hub messages while busy (called from waits); `defer` queues what the main
  // loop must handle.
  void service_hub(bool defer);
  // A heartbeat to the hub when party.heartbeat_ms has passed since the last one.
  void heartbeat_if_due();
  // Local file work (a checkpoint, the exported model) on a helper thread while this thread keeps
  // heartbeating, so that a long write does not get the party declared lost. Hub messages wait.
  void with_heartbeats(const std::function<void()>& work);
  void handle_hub(const proto::Message& m);
  void run_turn(const proto::Turn& t);
  void finish(const std::string& reason);
  void checkpoint();

  PartyConfig cfg_;
  zmq::context_t& ctx_;
  std::optional<net::CurveKeyPair> keys_;
  std::unique_ptr<ExpertServer> server_;
  std::unique_ptr<net::Client> hub_;
  std::unique_ptr<PeerLinks> links_;
  std::unique_ptr<PartyTrainer> trainer_;
  proto::Limits limits_;
  uint32_t index_ = 0;
  uint64_t seed_ = 0;
  uint64_t hb_seq_ = 0;
  int64_t global_step_ = 0;
  std::string state_ = "connecting";
  Clock::time_point last_hb_sent_{};
  Clock::time_point last_hub_msg_ = Clock::now();
  Clock::time_point last_rejoin_{};
  std::deque<proto::Message> deferred_;
  bool finished_ = false;  // final work done, bye sent
  bool released_ = false;  // the hub said everyone is done
  int64_t steps_since_ckpt_ = 0;
  std::string checkpoint_path_;
};

void Daemon::start_server() {
  net::ServerOptions so;
  so.endpoint = cfg_.party.expert_bind;
  if (keys_) {
    so.curve = keys_;
    so.allowed_client_keys = {keys_->public_key};  // nobody else until the directory arrives
  }
  so.max_message_bytes = static_cast<int64_t>(limits_.max_rows) * cfg_.model.d_model * 4 + (1 << 20);
  with_endpoint_key(cfg_, "party.expert_bind",
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
  with_endpoint_key(cfg_, "party.hub", [&] { hub_ = std::make_unique<net::Client>(ctx_, co); });
}

std::optional<proto::Message> Daemon::recv_hub(int timeout_ms) {
  std::optional<proto::Message> m;
  try {
    m = net::recv_message(*hub_, timeout_ms, limits_);
  } catch (const proto::DecodeError& e) {
    PCMOE_WARN("party.bad_hub_message").kv("reason", e.what());
    return std::nullopt;
  }
  if (m) last_hub_msg_ = Clock::now();
  return m;
}

void Daemon::send_hub(const proto::Message& m) {
  if (!net::send_message(*hub_, m, 1000)) {
    PCMOE_WARN("party.hub_send_failed").kv("type", std::string(proto::msg_type_name(proto::type_of(m))));
  }
}

proto::Hello Daemon::hello_message(int64_t resume_step) const {
  proto::Hello hello;
  hello.party_id = cfg_.party.id;
  hello.model_hash = model_config_hash(cfg_.model, cfg_.train);
  hello.expert_endpoint = cfg_.party.expert_advertise.empty() ? net::advertised_endpoint(server_->endpoint())
                                                              : cfg_.party.expert_advertise;
  hello.curve_public_key = keys_ ? keys_->public_key : "";
  hello.memory_budget_bytes = cfg_.party.memory_limit_mb << 20;
  hello.resume_step = resume_step;
  return hello;
}

proto::Welcome Daemon::join() {
  int64_t resume_step = 0;
  if (fs::exists(checkpoint_path_)) {
    try {
      resume_step = std::stoll(read_tensor_file(checkpoint_path_).meta_at("step"));
    } catch (const std::exception&) {
      resume_step = 0;
    }
  }
  const proto::Hello hello = hello_message(resume_step);
  const auto t0 = Clock::now();
  auto last_try = Clock::now() - std::chrono::hours(1);
  while (true) {
    if (signals::stop_requested()) throw TransportError("stopped by a signal before joining the federation");
    if (keys_ && hub_->refused()) {
      // The hub's key list comes from its config: asking again cannot help.
      throw ConfigError(
          fmt::format("the hub at {} refused this party's CURVE key {} (party.curve.secret_key_file {}): the "
                      "hub accepts only "
                      "the keys in its hub.parties[].public_key; put this public key there for party '{}', "
                      "or use the key "
                      "file whose public key is listed (pcmoe-ctl keygen --out FILE makes a pair and prints "
                      "its public key)",
                      cfg_.party.hub, keys_->public_key, cfg_.party.curve.secret_key_file, cfg_.party.id));
    }
    if (ms_since(t0) > cfg_.party.hub_timeout_ms) {
      throw TransportError(fmt::format(
          "no welcome from the hub at {} within {} ms (is pcmoe-hub running? right endpoint and keys?)",
          cfg_.party.hub, cfg_.party.hub_timeout_ms));
    }
    if (ms_since(last_try) > 2000) {
      last_try = Clock::now();
      net::send_message(*hub_, hello, 200);
    }
    std::optional<proto::Message> m = recv_hub(100);
    if (!m) continue;
    if (auto* w = std::get_if<proto::Welcome>(&*m)) return *w;
    if (auto* r = std::get_if<proto::Reject>(&*m)) {
      auto code = static_cast<proto::ErrorCode>(r->code);
      std::string msg =
          fmt::format("the hub refused this party ({}): {}", proto::error_code_name(code), r->reason);
      if (code == proto::ErrorCode::unknown_party) {  // the id, or (CURVE) the key, is not the hub's
        msg += fmt::format("; fix party.id ({}){} or the hub's hub.parties",
                           cfg_.origins.describe("party.id"), keys_ ? " / party.curve.secret_key_file" : "");
      }
      if (code == proto::ErrorCode::config_mismatch || code == proto::ErrorCode::unknown_party ||
          code == proto::ErrorCode::bad_version) {
        throw ConfigError(msg);
      }
      throw TransportError(msg);
    }
  }
}

void Daemon::rejoin(const std::string& why) {
  if (ms_since(last_rejoin_) < 1000) return;  // one hello a second, whatever the hub answers meanwhile
  last_rejoin_ = Clock::now();
  PCMOE_WARN("party.rejoining").kv("reason", why).kv("step", trainer_->last_step() + 1);
  send_hub(hello_message(trainer_->last_step() + 1));
}

void Daemon::apply_directory(const std::vector<proto::PartyEntry>& dir) {
  links_->update(dir);
  std::vector<bool> alive(dir.size(), true);
  std::set<std::string> ids, lost;
  std::map<std::string, std::string> keys;
  for (const auto& e : dir) {
    if (e.index < alive.size()) alive[e.index] = e.alive;
    ids.insert(e.party_id);
    if (!e.alive) lost.insert(e.party_id);
    keys[e.curve_public_key] = e.party_id;
  }
  if (trainer_) {
    trainer_->dispatcher().set_alive(alive);
    trainer_->host().set_known_parties(ids);
    trainer_->host().set_lost_parties(lost);  // their open steps must not block the others
  }
  server_->set_parties(keys);
}

void Daemon::heartbeat_if_due() {
  if (ms_since(last_hb_sent_) < cfg_.party.heartbeat_ms) return;
  last_hb_sent_ = Clock::now();
  proto::Heartbeat hb;
  hb.seq = ++hb_seq_;
  hb.step = trainer_ ? trainer_->last_step() + 1 : 0;
  hb.state = state_;
  send_hub(hb);
}

void Daemon::with_heartbeats(const std::function<void()>& work) {
  run_with_ticks(
      work, [this] { heartbeat_if_due(); }, std::chrono::milliseconds(20));
}

void Daemon::service_hub(bool defer) {
  heartbeat_if_due();
  while (true) {
    std::optional<proto::Message> m = recv_hub(0);
    if (!m) break;
    if (std::holds_alternative<proto::Directory>(*m) || std::holds_alternative<proto::ExpertLoad>(*m) ||
        std::holds_alternative<proto::Heartbeat>(*m) || !defer) {
      handle_hub(*m);
    } else {
      deferred_.push_back(*m);
    }
  }
  if (ms_since(last_hub_msg_) > cfg_.party.hub_timeout_ms) {
    throw TransportError(fmt::format("lost the hub at {}: nothing heard for {} ms", cfg_.party.hub,
                                     cfg_.party.hub_timeout_ms));
  }
}

void Daemon::checkpoint() {
  with_heartbeats([this] { trainer_->save_checkpoint(checkpoint_path_); });
  steps_since_ckpt_ = 0;
}

void Daemon::run_turn(const proto::Turn& t) {
  state_ = "training";
  uint32_t done = 0;
  proto::TurnDone td;
  td.turn_id = t.turn_id;
  for (uint32_t i = 0; i < t.n_steps; ++i) {
    if (signals::stop_requested()) {
      td.ok = false;
      td.reason = "party stopping (signal)";
      break;
    }
    try {
      auto outcome = trainer_->train_step(t.step_begin + i, t.turn_id);
      send_hub(outcome.report);
      ++done;
      if (cfg_.run.checkpoint_every > 0 && ++steps_since_ckpt_ >= cfg_.run.checkpoint_every) checkpoint();
    } catch (const HostError& e) {
      td.ok = false;
      td.reason = e.what();
      td.suspect_party = links_->peer_id(e.host());
      PCMOE_WARN("party.turn_failed")
          .kv("step", t.step_begin + i)
          .kv("suspect", td.suspect_party)
          .kv("reason", td.reason);
      break;
    } catch (const TransportError& e) {
      td.ok = false;
      td.reason = e.what();
      break;
    } catch (const ProtocolError& e) {
      td.ok = false;
      td.reason = e.what();
      break;
    } catch (const ModelError& e) {
      // e.g. a non-finite loss: the step was aborted everywhere before anything was applied.
      td.ok = false;
      td.reason = e.what();
      PCMOE_WARN("party.turn_failed").kv("step", t.step_begin + i).kv("reason", td.reason);
      break;
    }
  }
  td.steps_done = done;
  send_hub(td);
  state_ = "serving";
}

void Daemon::finish(const std::string& reason) {
  if (finished_) return;
  state_ = "finishing";
  PCMOE_INFO("party.finishing").kv("reason", reason);
  // The final evaluation calls the other parties' experts; if one is gone, finish anyway
  // (checkpoint, export, bye) and say so: the others must not wait for this party's bye.
  double loss = -1, bpb = -1;
  try {
    std::tie(loss, bpb) = trainer_->evaluate();
  } catch (const Error& e) {
    PCMOE_WARN("party.eval_failed").kv("step", trainer_->last_step() + 1).kv("error", e.what());
  }
  if (cfg_.run.save_on_exit) checkpoint();
  if (cfg_.run.save_on_exit) send_hub(proto::PoolRequest{});
  const auto t0 = Clock::now();
  std::optional<proto::Pool> pool;
  while (cfg_.run.save_on_exit && !pool && ms_since(t0) < 60000 && !released_) {
    std::optional<proto::Message> m = recv_hub(100);
    if (!m) {
      service_hub(true);
      continue;
    }
    if (auto* p = std::get_if<proto::Pool>(&*m)) {
      pool = *p;
    } else {
      handle_hub(*m);
    }
  }
  const std::string out = fs::join(cfg_.run.out_dir, "model.pcmoe");
  if (pool && pool->step >= 0) {
    try {
      with_heartbeats([&] { trainer_->export_model(out, *pool); });
    } catch (const Error& e) {
      PCMOE_ERROR("party.export_failed").kv("error", e.what());
    }
  } else if (cfg_.run.save_on_exit) {
    PCMOE_WARN("party.no_pool")
        .kv("reason", "the hub had no complete expert-pool snapshot; model not exported");
  }
  const auto mem = model::peak_memory(trainer_->device());
  const auto& ds = trainer_->dispatcher().stats();
  const HostStats hs = trainer_->host().stats();
  PCMOE_INFO("party.done")
      .kv("steps_done", trainer_->steps_done())
      .kv("eval_loss", loss)
      .kv("eval_bpb", bpb)
      .kv("model", pool ? out : std::string())
      .kv("peak_memory_bytes", mem.allocated_bytes)
      .kv("peak_reserved_bytes", mem.reserved_bytes)
      .kv("remote_requests", ds.requests)
      .kv("rows_sent", ds.rows_sent)
      .kv("remote_wait_ms", ds.wait_ms)
      .kv("serialize_ms", ds.serialize_ms)
      .kv("busy_retries", ds.busy_retries)
      .kv("host_requests", hs.requests)
      .kv("host_compute_ms", hs.compute_ms)
      .kv("host_recomputed", hs.recomputed)
      .kv("host_busy", hs.busy)
      .kv("bytes_sent", links_->bytes_sent())
      .kv("bytes_received", links_->bytes_received());
  proto::Bye bye;
  bye.reason = reason;
  send_hub(bye);
  finished_ = true;
  state_ = "done";
}

void Daemon::handle_hub(const proto::Message& m) {
  // The federation's global step, as the hub last told it (turns, expert load, heartbeats).
  if (auto* t = std::get_if<proto::Turn>(&m)) global_step_ = std::max(global_step_, t->step_begin);
  if (auto* l = std::get_if<proto::ExpertLoad>(&m)) global_step_ = std::max(global_step_, l->step + 1);
  if (auto* h = std::get_if<proto::Heartbeat>(&m)) global_step_ = std::max(global_step_, h->step);
  if (auto* t = std::get_if<proto::Turn>(&m)) {
    run_turn(*t);
  } else if (auto* d = std::get_if<proto::Directory>(&m)) {
    apply_directory(d->directory);
  } else if (auto* l = std::get_if<proto::ExpertLoad>(&m)) {
    if (cfg_.model.router.balance_bias_rate > 0 && trainer_) trainer_->update_balance_bias(l->window);
  } else if (auto* c = std::get_if<proto::CheckpointRequest>(&m)) {
    proto::CheckpointDone done;
    done.step = c->step;
    try {
      checkpoint();
      done.path = checkpoint_path_;
    } catch (const Error& e) {
      done.ok = false;
      done.reason = e.what();
    }
    send_hub(done);
  } else if (auto* s = std::get_if<proto::SnapshotRequest>(&m)) {
    // The snapshot is of the experts as they are now: at the federation's global step.
    send_hub(trainer_->snapshot(s->snapshot_id, std::max(global_step_, trainer_->last_step() + 1)));
  } else if (auto* st = std::get_if<proto::Stop>(&m)) {
    if (st->reason == "release") {
      released_ = true;
    } else {
      finish(st->reason);
    }
  } else if (auto* e = std::get_if<proto::ErrorMsg>(&m)) {
    const auto code = static_cast<proto::ErrorCode>(e->code);
    if (code == proto::ErrorCode::unknown_party && !finished_) {
      rejoin(e->reason);
    } else {
      PCMOE_WARN("party.hub_error")
          .kv("code", std::string(proto::error_code_name(code)))
          .kv("reason", e->reason);
    }
  } else if (auto* w = std::get_if<proto::Welcome>(&m)) {
    // The answer to rejoin(): the same place in the same federation, the experts available again.
    PCMOE_CHECK_T(ProtocolError,
                  w->party_index == index_ && w->placement == trainer_->dispatcher().placement().host,
                  "the hub welcomed this party back at index {} with another placement (was index {})",
                  w->party_index, index_);
    apply_directory(w->directory);
    PCMOE_INFO("party.rejoined")
        .kv("step", w->step)
        .kv("index", static_cast<int64_t>(w->party_index))
        .kv("run_id", w->run_id);
  } else if (auto* r = std::get_if<proto::Reject>(&m)) {
    PCMOE_WARN("party.rejoin_refused")
        .kv("code", std::string(proto::error_code_name(static_cast<proto::ErrorCode>(r->code))))
        .kv("reason", r->reason);
  } else if (std::holds_alternative<proto::Heartbeat>(m) || std::holds_alternative<proto::Pool>(m)) {
    // liveness only / a late pool answer
  } else {
    PCMOE_WARN("party.unexpected_hub_message")
        .kv("type", std::string(proto::msg_type_name(proto::type_of(m))));
  }
}

int Daemon::run() {
  model::set_threads(cfg_.run.threads);
  fs::make_dirs(cfg_.run.out_dir);
  checkpoint_path_ = fs::join(cfg_.run.out_dir, "checkpoint.pcmoe");
  limits_.d_model = cfg_.model.d_model;
  limits_.max_rows = static_cast<int64_t>(cfg_.train.batch_size) * cfg_.model.seq_len * cfg_.model.top_k;
  std::string seed_source;
  seed_ = private_backbone_seed(cfg_, &seed_source);
  PCMOE_INFO("party.start")
      .kv("party", cfg_.party.id)
      .kv("device", cfg_.run.device)
      .kv("torch", model::torch_version())
      .kv("seed_source", seed_source)
      .kv("config_hash", model_config_hash(cfg_.model, cfg_.train));
  if (cfg_.privacy.shared_init || !cfg_.run.init_from.empty()) {
    PCMOE_WARN("privacy.shared_backbone")
        .kv("message",
            "this backbone starts from a shared checkpoint: hosts whose backbone shares it can decode most "
            "tokens from the rows they serve (DESIGN.md). Defences: privacy.row_noise_std > 0 and "
            "privacy.local_only_layers for the early MoE layers")
        .kv("row_noise_std", cfg_.privacy.row_noise_std)
        .kv("local_only_layers", cfg_.privacy.local_only_layers);
  }
  if (!cfg_.party.curve.secret_key_file.empty()) keys_ = net::read_key_file(cfg_.party.curve.secret_key_file);
  start_server();
  connect_hub();
  proto::Welcome w = join();
  index_ = w.party_index;
  Placement placement;
  placement.self = w.party_index;
  placement.n_parties = static_cast<uint32_t>(w.directory.size());
  placement.moe_layers.assign(w.moe_layers.begin(), w.moe_layers.end());
  placement.host = w.placement;
  PCMOE_CHECK_T(ProtocolError,
                placement.moe_layers == cfg_.model.moe_layer_indices() &&
                    w.n_experts == static_cast<uint32_t>(cfg_.model.n_experts),
                "the hub's placement does not match this party's model config");
  PeerLinksOptions lo;
  lo.self = index_;
  lo.request_timeout_ms = cfg_.party.request_timeout_ms;
  lo.curve = keys_;
  lo.limits = limits_;
  links_ = std::make_unique<PeerLinks>(ctx_, lo);
  links_->set_idle_hook([this] { service_hub(true); });
  trainer_ = std::make_unique<PartyTrainer>(cfg_, seed_, placement, *links_);
  {
    const model::Footprint fp = trainer_->footprint();
    PCMOE_INFO("party.footprint")
        .kv("total_bytes", fp.total())
        .kv("minimum_bytes", fp.minimum())
        .kv("backbone_state_bytes", fp.backbone_state)
        .kv("expert_state_bytes", fp.expert_state)
        .kv("activations_bytes", fp.activations)
        .kv("remote_stash_bytes", fp.remote_stash)
        .kv("limit_bytes", cfg_.party.memory_limit_mb << 20);
    std::fprintf(stderr, "pcmoe-party %s: memory footprint estimate\n%s\n", cfg_.party.id.c_str(),
                 fp.table().c_str());
    try {
      trainer_->apply_memory_limit(cfg_.party.memory_limit_mb << 20);
    } catch (const ConfigError&) {
      proto::Bye bye;
      bye.reason = "memory limit too small";
      send_hub(bye);
      throw;
    }
  }
  trainer_->restore_checkpoint(checkpoint_path_);
  apply_directory(w.directory);
  server_->install(&trainer_->host());
  state_ = "serving";
  PCMOE_INFO("party.joined")
      .kv("index", static_cast<int64_t>(index_))
      .kv("parties", static_cast<int64_t>(placement.n_parties))
      .kv("expert_endpoint", server_->endpoint())
      .kv("backbone_params", trainer_->backbone_params())
      .kv("expert_params", trainer_->expert_params())
      .kv("run_id", w.run_id);

  int code = kExitOk;
  try {
    while (!released_) {
      if (signals::stop_requested() && !finished_) {
        PCMOE_INFO("party.signal").kv("signal", static_cast<int64_t>(signals::stop_signal()));
        checkpoint();
        proto::Bye bye;
        bye.reason = "signal";
        send_hub(bye);
        break;
      }
      if (signals::stop_requested() && finished_) break;
      if (!deferred_.empty()) {
        auto m = deferred_.front();
        deferred_.pop_front();
        handle_hub(m);
        continue;
      }
      std::optional<proto::Message> m = recv_hub(50);
      if (m) handle_hub(*m);
      if (finished_ && ms_since(last_hub_msg_) > 5 * cfg_.party.heartbeat_ms) {
        // Our bye is in and the hub went quiet: it finished (its release may have been lost).
        PCMOE_INFO("party.hub_gone_after_bye").kv("silent_ms", ms_since(last_hub_msg_));
        break;
      }
      service_hub(false);
    }
  } catch (const TransportError& e) {
    PCMOE_ERROR("party.hub_lost").kv("error", e.what());
    if (!finished_) checkpoint();
    code = kExitTransport;
  }
  server_->stop();
  PCMOE_INFO("party.exit").kv("code", static_cast<int64_t>(code));
  return code;
}

}  // namespace

int run_party(const PartyConfig& cfg) {
  Daemon d(cfg);
  return d.run();
}

}  // namespace pcmoe::party
