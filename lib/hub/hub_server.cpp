// The hub daemon's socket loop (see hub_server.h).
#include "hub/hub_server.h"

#include <unistd.h>

#include <ctime>
#include <filesystem>
#include <string_view>

#include "common/error.h"
#include "common/fs.h"
#include "common/json.h"
#include "common/log.h"
#include "common/signals.h"
#include "hub/ctl.h"
#include "net/curve.h"
#include "net/rpc.h"

namespace pcmoe::hub {

std::string make_run_id() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y%m%dT%H%M%SZ", &tm);
  return fmt::format("{}-{}", buf, ::getpid());
}

std::map<std::string, std::string> operator_keys(const HubConfig& cfg, const std::string& hub_key) {
  std::map<std::string, std::string> ops;
  auto add = [&](const std::string& key, const std::string& id, const std::string& where) {
    if (key == hub_key) {
      throw ConfigError(
          fmt::format("{}: this is the hub's own public key; an operator needs a key pair of "
                      "its own (pcmoe-ctl keygen)",
                      where));
    }
    for (const auto& p : cfg.hub.parties) {
      if (p.public_key == key) {
        throw ConfigError(
            fmt::format("{}: this is party '{}''s public key; an operator needs a key pair of "
                        "its own (pcmoe-ctl keygen)",
                        where, p.id));
      }
    }
    ops.emplace(key, id);
  };
  for (size_t i = 0; i < cfg.hub.operators.size(); ++i) {
    add(cfg.hub.operators[i].public_key, cfg.hub.operators[i].id,
        cfg.origins.describe(fmt::format("hub.operators[{}].public_key", i)));
  }
  if (!cfg.hub.ctl_key_file.empty()) {
    std::string key;
    at_config_key(cfg.origins, "hub.ctl_key_file",
                  [&] { key = net::read_public_key_file(cfg.hub.ctl_key_file); });
    add(key, "ctl", cfg.origins.describe("hub.ctl_key_file"));
  }
  if (ops.empty()) {
    PCMOE_WARN("hub.no_operator")
        .kv("reason", "neither hub.operators nor hub.ctl_key_file is set: no pcmoe-ctl can reach this hub");
  }
  return ops;
}

HubServer::HubServer(const HubConfig& cfg, zmq::context_t& ctx, HubServerOptions options)
    : cfg_(cfg),
      options_(std::move(options)),
      run_id_(options_.run_id.empty() ? make_run_id() : options_.run_id),
      store_(cfg.hub.out_dir) {
  net::ServerOptions so;
  so.endpoint = cfg_.hub.bind;
  // No ZMTP PINGs from the hub (its ROUTER answers the parties' PINGs, which close dead
  // connections from their side; a party's own heartbeats keep its liveness): libzmq 4.3.4 aborts
  // when a PING timer fires on a connection a flooding peer hung up (zeromq/libzmq#4841; test "a
  // peer that floods the hub and hangs up").
  so.heartbeat_ivl_ms = 0;
  HubOptions ho;
  ho.timeouts = options_.timeouts;
  if (cfg_.curve()) {
    net::CurveKeyPair keys = net::read_key_file(cfg_.hub.secret_key_file);
    public_key_ = keys.public_key;
    ho.curve = true;
    ho.operators = operator_keys(cfg_, public_key_);
    // Only the federation's parties and its operators may even complete a handshake.
    for (const auto& p : cfg_.hub.parties) so.allowed_client_keys.push_back(p.public_key);
    for (const auto& [key, id] : ho.operators) so.allowed_client_keys.push_back(key);
    so.curve = std::move(keys);
  }
  // A frame never needs to be larger than one expert parameter tensor (snapshots) or a header.
  const int64_t param_bytes = int64_t{cfg_.model.d_ff} * cfg_.model.d_model * 8;
  so.max_message_bytes = std::max<int64_t>(int64_t{16} << 20, param_bytes + (int64_t{1} << 20));
  limits_.max_frame_bytes = static_cast<size_t>(so.max_message_bytes);
  try {
    server_ = std::make_unique<net::Server>(ctx, so);
  } catch (const ConfigError& e) {  // reported where hub.bind was set
    throw ConfigError(fmt::format("{}: {}", cfg_.origins.describe("hub.bind"), e.what()));
  } catch (const TransportError& e) {
    const bool in_use = std::string_view(e.what()).find("in use") != std::string_view::npos;
    throw TransportError(
        fmt::format("{}: {} ({})", cfg_.origins.describe("hub.bind"), e.what(),
                    in_use ? "is another pcmoe-hub running there? stop it, or choose a free port"
                           : "use an address of this host and a free port"));
  }
  endpoint_ = server_->endpoint();
  state_ = std::make_unique<HubState>(cfg_, store_, run_id_, Clock::now(), ho);
  if (cfg_.hub.resume) {
    if (auto saved = read_saved_hub_state(store_.state_path())) {
      std::shared_ptr<const TensorFile> pool;
      if (fs::exists(store_.pool_path())) {
        try {
          pool = std::make_shared<const TensorFile>(read_tensor_file(store_.pool_path()));
        } catch (const Error& e) {  // the next snapshot round rebuilds it
          PCMOE_WARN("hub.resume_pool_dropped").kv("reason", e.what());
        }
      }
      state_->restore(*saved, std::move(pool));
      run_id_ = state_->run_id();
    }
  }
  if (!cfg_.hub.http.empty()) start_http();
  write_ctl_file();
  std::vector<std::string> ids;
  for (const auto& p : cfg_.hub.parties) ids.push_back(p.id);
  PCMOE_INFO("hub.started")
      .kv("run_id", run_id_)
      .kv("endpoint", endpoint_)
      .kv("curve", ho.curve)
      .kv("public_key", public_key_)
      .kv("parties", ids)
      .kv("total_steps", cfg_.train.steps)
      .kv("steps_per_turn", cfg_.hub.steps_per_turn)
      .kv("seed", cfg_.hub.seed)
      .kv("model_hash", state_->model_hash())
      .kv("out_dir", cfg_.hub.out_dir)
      .kv("ctl_file", store_.ctl_path())
      .kv("http", http_url())
      .kv("pid", static_cast<int64_t>(::getpid()));
}

HubServer::~HubServer() = default;

void HubServer::start_http() {
  try {  // failures are reported where hub.http was set
    http_ = std::make_unique<HttpStatusServer>(parse_http_address(cfg_.hub.http), board_);
  } catch (const ConfigError& e) {
    throw ConfigError(fmt::format("{}: {}", cfg_.origins.describe("hub.http"), e.what()));
  } catch (const TransportError& e) {
    throw TransportError(fmt::format("{}: {}", cfg_.origins.describe("hub.http"), e.what()));
  }
  publish(Clock::now());
  PCMOE_INFO("hub.http_listening").kv("url", http_->url());
}

void HubServer::write_ctl_file() {
  // What pcmoe-ctl --run needs to reach this hub: where to connect (the bound port, so an ephemeral
  // bind works too) and, with CURVE, the key pair file it authenticates with (its path, not the key).
  JsonObject j;
  j.add("endpoint", connect_endpoint(endpoint_));
  j.add("hub_public_key", public_key_);
  j.add("operator_key_file", cfg_.hub.ctl_key_file.empty()
                                 ? std::string()
                                 : std::filesystem::absolute(cfg_.hub.ctl_key_file).string());
  j.add("http", http_url()).add("run_id", run_id_).add("pid", static_cast<int64_t>(::getpid()));
  j.add("out_dir", std::filesystem::absolute(cfg_.hub.out_dir).string())
      .add("written_at", log::utc_timestamp());
  try {
    fs::atomic_write(store_.ctl_path(), j.str() + "\n");
  } catch (const std::exception& e) {
    PCMOE_ERROR("hub.write_failed").kv("what", "ctl.json").kv("error", e.what());
  }
}

void HubServer::publish(TimePoint now) {
  board_.publish(std::make_shared<const HubView>(state_->view(now)));
  last_publish_ = now;
}

void HubServer::deliver(const std::vector<Outgoing>& out) {
  for (const auto& o : out) {
    // A peer that is gone or not reading (full queue) just misses the message; liveness handles it.
    if (!net::reply(*server_, o.peer, o.message)) ++send_failures_;
  }
}

bool HubServer::serve_once(int timeout_ms) {
  auto req = net::recv_request(*server_, timeout_ms, limits_);
  if (!req) return false;
  const TimePoint now = Clock::now();
  if (req->message) {
    deliver(state_->on_message(req->peer, req->curve_key, *req->message, now));
  } else if (req->error) {
    deliver(state_->on_decode_error(req->peer, *req->error, now));
  }
  return true;
}

int HubServer::run() {
  int seen_stops = 0;
  bool stop_requested = false;  // a requested stop always ends the process, whatever exit_when_done says
  while (true) {
    if (options_.use_signals && signals::stop_requested()) {
      signals::reset();
      stop_requests_.fetch_add(1);
    }
    const int stops = stop_requests_.load();
    if (stops > seen_stops) {
      seen_stops = stops;
      if (stops >= 2) {
        PCMOE_WARN("hub.exit_now").kv("reason", "second stop request").kv("step", state_->step());
        state_->save_state(Clock::now());
        return kExitOk;
      }
      stop_requested = true;
      deliver(state_->request_stop("operator", Clock::now()));
    }
    // Drain what is queued (bounded, so ticks keep their pace), then tick.
    if (serve_once(options_.poll_ms)) {
      for (int i = 0; i < 1000 && serve_once(0); ++i) {
      }
    }
    state_->note_transport(server_->bytes_received(), server_->bytes_sent(), send_failures_);
    const TimePoint now = Clock::now();
    deliver(state_->on_tick(now));
    if (http_ && (now - last_publish_ >= Millis(kPublishMs) || state_->finished())) publish(now);
    if (state_->finished() && (cfg_.hub.exit_when_done || stop_requested)) {
      // Linger is 0: give libzmq's I/O thread time to deliver the last messages (the release)
      // before the socket closes, still answering whatever arrives meanwhile.
      const auto until = Clock::now() + std::chrono::milliseconds(500);
      while (Clock::now() < until) serve_once(50);
      return kExitOk;
    }
  }
}

}  // namespace pcmoe::hub
