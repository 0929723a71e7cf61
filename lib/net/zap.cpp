// Owns the ZAP handler thread and its per-domain allow-lists (see zap.h).
#include "net/zap.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <array>
#include <condition_variable>

#include "common/error.h"
#include "common/log.h"
#include "net/curve.h"

namespace pcmoe::net {
namespace {

constexpr const char* kZapEndpoint = "inproc://zeromq.zap.01";

struct Registry {
  std::mutex mu;
  std::condition_variable cv;  // signalled when a handler has been deleted
  std::map<void*, std::weak_ptr<ZapHandler>> handlers;
};

Registry& registry() {
  static auto* r = new Registry();  // leaked: handlers may die during static destruction
  return *r;
}

std::string z85_of(const zmq::message_t& key) {
  if (key.size() != 32) return "";
  char out[kZ85KeyLength + 1] = {0};
  if (!zmq_z85_encode(out, static_cast<const uint8_t*>(key.data()), 32)) return "";
  return out;
}

}  // namespace

std::shared_ptr<ZapHandler> ZapHandler::for_context(zmq::context_t& ctx) {
  Registry& reg = registry();
  std::unique_lock<std::mutex> lock(reg.mu);
  void* key = ctx.handle();
  while (true) {
    auto it = reg.handlers.find(key);
    if (it == reg.handlers.end()) break;
    if (auto existing = it->second.lock()) return existing;
    reg.cv.wait(lock);  // the last holder is deleting it: wait until it has unbound
  }
  std::shared_ptr<ZapHandler> h(new ZapHandler(ctx), [key](ZapHandler* p) {
    delete p;  // joins the thread and unbinds the endpoint
    Registry& r = registry();
    std::lock_guard<std::mutex> guard(r.mu);
    r.handlers.erase(key);
    r.cv.notify_all();
  });
  reg.handlers[key] = h;
  return h;
}

std::string ZapHandler::new_domain() {
  static std::atomic<uint64_t> next{1};
  return fmt::format("pcmoe.{}", next.fetch_add(1));
}

ZapHandler::ZapHandler(zmq::context_t& ctx) : rep_(ctx, zmq::socket_type::rep) {
  rep_.set(zmq::sockopt::linger, 0);
  try {
    rep_.bind(kZapEndpoint);
  } catch (const zmq::error_t& e) {
    throw TransportError(fmt::format("cannot bind the ZAP handler at {}: {}", kZapEndpoint, e.what()));
  }
  if (::pipe2(wake_fds_, O_CLOEXEC | O_NONBLOCK) != 0) {
    throw TransportError("pipe2 for the ZAP handler failed");
  }
  thread_ = std::thread([this] { run(); });
}

ZapHandler::~ZapHandler() {
  stop_.store(true);
  char b = 1;
  [[maybe_unused]] ssize_t n = ::write(wake_fds_[1], &b, 1);
  if (thread_.joinable()) thread_.join();
  ::close(wake_fds_[0]);
  ::close(wake_fds_[1]);
}

void ZapHandler::set_domain(const std::string& domain, const std::vector<std::string>& allowed_keys) {
  std::set<std::string> keys;
  for (const auto& k : allowed_keys) {
    if (!is_z85_key(k)) {
      throw ConfigError(fmt::format("allowed client key '{}' is not a 40-character Z85 key", k));
    }
    keys.insert(k);
  }
  if (keys.empty()) PCMOE_INFO("net.curve_any_client").kv("domain", domain);
  std::lock_guard<std::mutex> lock(mu_);
  domains_[domain] = std::move(keys);
}

void ZapHandler::remove_domain(const std::string& domain) {
  std::lock_guard<std::mutex> lock(mu_);
  domains_.erase(domain);
}

std::pair<std::string, std::string> ZapHandler::decide(const std::string& domain, const std::string& address,
                                                       const std::string& mechanism, const std::string& key) {
  bool ok = false;
  std::string why;
  if (mechanism != "CURVE") {
    why = "mechanism " + mechanism;
  } else {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = domains_.find(domain);
    if (it == domains_.end()) {
      why = "unknown domain";
    } else {
      ok = !key.empty() && (it->second.empty() || it->second.count(key) > 0);
      if (!ok) why = "key not allowed";
    }
  }
  if (!ok) {
    denied_.fetch_add(1);
    PCMOE_WARN("net.auth_denied").kv("key", key).kv("address", address).kv("domain", domain).kv("why", why);
    return {"400", ""};
  }
  accepted_.fetch_add(1);
  PCMOE_DEBUG("net.auth_ok").kv("key", key).kv("address", address).kv("domain", domain);
  return {"200", key};
}

void ZapHandler::handle(zmq::socket_t& rep) {
  // Request: version, request id, domain, address, routing id, mechanism, credentials...
  std::vector<zmq::message_t> parts;
  while (true) {
    zmq::message_t part;
    if (!rep.recv(part, zmq::recv_flags::dontwait)) break;
    bool more = part.more();
    if (parts.size() < 16) parts.push_back(std::move(part));
    if (!more) break;
  }
  // A REP socket must answer every request, even one that is not ZAP (libzmq only sends ZAP).
  std::string request_id = parts.size() > 1 ? parts[1].to_string() : "";
  std::pair<std::string, std::string> verdict{"400", ""};
  if (parts.size() >= 6 && parts[0].to_string() == "1.0") {
    std::string key = parts.size() > 6 ? z85_of(parts[6]) : "";
    verdict = decide(parts[2].to_string(), parts[3].to_string(), parts[5].to_string(), key);
  }
  const auto& [status, user] = verdict;
  std::array<std::string, 6> reply = {"1.0", request_id, status, status == "200" ? "OK" : "denied", user, ""};
  for (size_t i = 0; i < reply.size(); ++i) {
    rep.send(zmq::buffer(reply[i]), i + 1 < reply.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
  }
}

void ZapHandler::run() {
  while (!stop_.load()) {
    zmq::pollitem_t items[] = {{rep_.handle(), 0, ZMQ_POLLIN, 0}, {nullptr, wake_fds_[0], ZMQ_POLLIN, 0}};
    try {
      zmq::poll(items, 2, std::chrono::milliseconds(-1));
      if (items[0].revents & ZMQ_POLLIN) handle(rep_);
    } catch (const zmq::error_t& e) {
      if (e.num() == ETERM) break;
      if (e.num() != EINTR) PCMOE_ERROR("net.zap_error").kv("error", e.what());
    }
  }
  // Unbind explicitly: closing alone releases the inproc name later, on libzmq's reaper thread,
  // and a handler started right after this one could not bind it.
  try {
    rep_.unbind(kZapEndpoint);
  } catch (const zmq::error_t&) {
  }
  rep_.close();
}

}  // namespace pcmoe::net
