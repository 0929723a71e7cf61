// The party's expert service thread (see expert_server.h).
#include "party/expert_server.h"

#include <chrono>
#include <vector>

#include "common/log.h"
#include "net/rpc.h"

namespace pcmoe::party {

ExpertServer::ExpertServer(zmq::context_t& ctx, const net::ServerOptions& options,
                           const proto::Limits& limits)
    : server_(std::make_unique<net::Server>(ctx, options)), endpoint_(server_->endpoint()), limits_(limits) {}

ExpertServer::~ExpertServer() { stop(); }

void ExpertServer::start() {
  if (!thread_.joinable()) thread_ = std::thread([this] { loop(); });
}

void ExpertServer::install(ExpertHost* host) { host_.store(host); }

void ExpertServer::set_parties(const std::map<std::string, std::string>& key_to_id) {
  std::vector<std::string> keys;
  {
    std::lock_guard<std::mutex> lock(keys_mu_);
    key_to_id_ = key_to_id;
    for (const auto& [k, id] : key_to_id_) {
      if (!k.empty()) keys.push_back(k);
    }
  }
  if (server_ && server_->curve_enabled() && !keys.empty()) server_->set_allowed_client_keys(keys);
}

void ExpertServer::stop() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
}

void ExpertServer::loop() {
  using Clock = std::chrono::steady_clock;
  auto last_stats = Clock::now();
  int bad_logged = 0;
  auto bad_window = Clock::now();
  while (!stop_.load()) {
    std::optional<net::Request> req;
    try {
      req = net::recv_request(*server_, 100, limits_);
    } catch (const std::exception& e) {
      PCMOE_ERROR("server.recv_failed").kv("error", e.what());
      continue;
    }
    if (Clock::now() - last_stats > std::chrono::seconds(10)) {
      last_stats = Clock::now();
      PCMOE_INFO("server.stats")
          .kv("requests", requests_.load())
          .kv("bad_messages", bad_.load())
          .kv("bytes_received", server_->bytes_received())
          .kv("bytes_sent", server_->bytes_sent());
    }
    if (!req) continue;
    const auto received = Clock::now();
    requests_++;
    if (req->error) {
      bad_++;
      if (Clock::now() - bad_window > std::chrono::seconds(1)) {
        bad_window = Clock::now();
        bad_logged = 0;
      }
      if (bad_logged++ < 10) {
        PCMOE_WARN("server.bad_message")
            .kv("code", std::string(proto::error_code_name(req->error->code)))
            .kv("reason", req->error->what())
            .kv("bytes", static_cast<uint64_t>(req->bytes));
      }
      net::reply_error(*server_, *req);
      continue;
    }
    ExpertHost* host = host_.load();
    proto::Message reply;
    if (!host) {
      // Joined but still building its trainer (the federation may already be training): `busy`
      // makes the requester ask again, and the request id lets it match this answer at once.
      proto::ErrorMsg e;
      e.code = static_cast<uint16_t>(proto::ErrorCode::busy);
      e.reason = "this party is still starting (its expert host is not ready yet); retry";
      e.in_reply_to = static_cast<uint16_t>(proto::type_of(*req->message));
      if (const auto* f = std::get_if<proto::ExpertForward>(&*req->message)) e.request_id = f->request_id;
      if (const auto* b = std::get_if<proto::ExpertBackward>(&*req->message)) e.request_id = b->request_id;
      reply = e;
    } else {
      std::string sender;
      if (!req->curve_key.empty()) {
        std::lock_guard<std::mutex> lock(keys_mu_);
        auto it = key_to_id_.find(req->curve_key);
        sender = it == key_to_id_.end() ? "?unknown-key" : it->second;
      }
      reply = host->handle(sender, *req->message, received);
    }
    ExpertHost::stamp_replied(reply);
    net::reply(*server_, req->peer, reply);
  }
}

}  // namespace pcmoe::party
