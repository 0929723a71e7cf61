// Owns Server (ROUTER) and Client (DEALER) set-up, receive and send (see socket.h).
#include "net/socket.h"

#include <fmt/format.h>

#include <algorithm>

#include "common/error.h"
#include "common/log.h"
#include "net/context.h"
#include "net/endpoint.h"
#include "net/zap.h"

namespace pcmoe::net {
namespace {

void check_key(const std::string& key, const char* what) {
  if (!is_z85_key(key)) throw ConfigError(fmt::format("{} is not a 40-character Z85 CURVE key", what));
}

struct CommonOptions {
  int64_t max_message_bytes;
  int send_hwm, recv_hwm, handshake_ivl_ms, heartbeat_ivl_ms, heartbeat_timeout_ms;
};

void common_options(zmq::socket_t& s, const CommonOptions& o) {
  s.set(zmq::sockopt::linger, 0);
  s.set(zmq::sockopt::maxmsgsize, o.max_message_bytes);
  s.set(zmq::sockopt::sndhwm, o.send_hwm);
  s.set(zmq::sockopt::rcvhwm, o.recv_hwm);
  s.set(zmq::sockopt::handshake_ivl, o.handshake_ivl_ms);
  if (o.heartbeat_ivl_ms > 0) {
    PCMOE_CHECK_T(ConfigError, o.heartbeat_timeout_ms > 0, "a ZMTP heartbeat interval needs a timeout");
    s.set(zmq::sockopt::heartbeat_ivl, o.heartbeat_ivl_ms);
    s.set(zmq::sockopt::heartbeat_timeout, o.heartbeat_timeout_ms);
    // The peer closes its side too when it hears nothing for this long (sent in each PING).
    s.set(zmq::sockopt::heartbeat_ttl, std::min(o.heartbeat_timeout_ms, 6553500));
  }
}

std::optional<Incoming> receive(zmq::socket_t& s, bool router, size_t max_frames, int timeout_ms,
                                std::atomic<uint64_t>& counter) {
  if (!wait_for_socket(s, ZMQ_POLLIN, timeout_ms)) return std::nullopt;
  zmq::message_t first;
  try {
    if (!s.recv(first, zmq::recv_flags::dontwait)) return std::nullopt;
    Incoming in;
    if (router) {
      in.peer = first.to_string();
      if (!first.more()) return std::nullopt;  // a routing id alone: nothing to deliver
      if (!s.recv(first, zmq::recv_flags::dontwait)) {
        throw TransportError("message without body after routing id");
      }
    }
    read_rest(s, std::move(first), max_frames, in);
    counter.fetch_add(in.bytes, std::memory_order_relaxed);
    return in;
  } catch (const zmq::error_t& e) {
    throw TransportError(fmt::format("recv failed: {}", e.what()));
  }
}

constexpr int kReportFailedHandshakes = 3;

uint64_t payload_bytes(const std::vector<proto::Blob>& frames) {
  uint64_t n = 0;
  for (const auto& f : frames) n += f.size;
  return n;
}

}  // namespace

// ---- Server ----

Server::Server(zmq::context_t& ctx, const ServerOptions& o) : socket_(ctx, zmq::socket_type::router) {
  parse_endpoint(o.endpoint, EndpointUse::bind);
  max_frames_ = o.max_frames;
  common_options(socket_, {o.max_message_bytes, o.send_hwm, o.recv_hwm, o.handshake_ivl_ms,
                           o.heartbeat_ivl_ms, o.heartbeat_timeout_ms});
  socket_.set(zmq::sockopt::router_mandatory, 1);
  // No ZMQ_ROUTER_HANDOVER: a routing id in use is never taken over (proto/PROTOCOL.md section 1).
  if (o.curve) {
    if (!curve_available()) throw ConfigError("CURVE requested but libzmq has no CURVE support");
    check_key(o.curve->secret_key, "server secret key");
    zap_ = ZapHandler::for_context(ctx);
    zap_domain_ = ZapHandler::new_domain();
    zap_->set_domain(zap_domain_, o.allowed_client_keys);
    socket_.set(zmq::sockopt::zap_domain, zap_domain_);
    socket_.set(zmq::sockopt::curve_server, 1);
    socket_.set(zmq::sockopt::curve_secretkey, o.curve->secret_key);
  }
  try {
    socket_.bind(o.endpoint);
  } catch (const zmq::error_t& e) {
    if (zap_) zap_->remove_domain(zap_domain_);
    throw TransportError(fmt::format("cannot bind '{}': {}", o.endpoint, e.what()));
  }
  endpoint_ = last_endpoint(socket_);
  PCMOE_DEBUG("net.bound").kv("endpoint", endpoint_).kv("curve", o.curve.has_value());
}

Server::Server(const ServerOptions& options) : Server(default_context(), options) {}

Server::~Server() {
  socket_.close();
  if (zap_) zap_->remove_domain(zap_domain_);
}

std::optional<Incoming> Server::recv(int timeout_ms) {
  return receive(socket_, true, max_frames_, timeout_ms, bytes_received_);
}

bool Server::send(const std::string& peer, const std::vector<proto::Blob>& frames) {
  if (send_multipart(socket_, &peer, frames) != SendResult::sent) return false;
  bytes_sent_.fetch_add(payload_bytes(frames), std::memory_order_relaxed);
  return true;
}

void Server::set_allowed_client_keys(const std::vector<std::string>& keys) {
  PCMOE_CHECK_T(ConfigError, zap_ != nullptr, "allowed client keys need CURVE on the server {}", endpoint_);
  zap_->set_domain(zap_domain_, keys);
}

// ---- Client ----

Client::Client(zmq::context_t& ctx, const ClientOptions& o) : socket_(ctx, zmq::socket_type::dealer) {
  endpoint_ = parse_endpoint(o.endpoint, EndpointUse::connect).str();
  max_frames_ = o.max_frames;
  common_options(socket_, {o.max_message_bytes, o.send_hwm, o.recv_hwm, o.handshake_ivl_ms,
                           o.heartbeat_ivl_ms, o.heartbeat_timeout_ms});
  socket_.set(zmq::sockopt::immediate, o.immediate);
  socket_.set(zmq::sockopt::reconnect_ivl, o.reconnect_ivl_ms);
  socket_.set(zmq::sockopt::reconnect_ivl_max, o.reconnect_ivl_max_ms);
  if (!o.routing_id.empty()) socket_.set(zmq::sockopt::routing_id, o.routing_id);
  if (o.curve) {
    if (!curve_available()) throw ConfigError("CURVE requested but libzmq has no CURVE support");
    check_key(o.curve->public_key, "client public key");
    check_key(o.curve->secret_key, "client secret key");
    check_key(o.server_public_key, fmt::format("server public key for '{}'", o.endpoint).c_str());
    socket_.set(zmq::sockopt::curve_serverkey, o.server_public_key);
    socket_.set(zmq::sockopt::curve_publickey, o.curve->public_key);
    socket_.set(zmq::sockopt::curve_secretkey, o.curve->secret_key);
  }
  if (o.curve) {
    monitor_ = std::make_unique<SocketMonitor>(
        ctx, socket_,
        ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_SUCCEEDED |
            ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL);
  }
  try {
    socket_.connect(o.endpoint);
  } catch (const zmq::error_t& e) {
    throw TransportError(fmt::format("cannot connect to '{}': {}", o.endpoint, e.what()));
  }
}

Client::~Client() { monitor_.reset(); }

bool Client::refused() {
  if (!monitor_) return false;
  while (auto ev = monitor_->next(0)) {
    if (ev->event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
      refused_ = false;
      failed_handshakes_ = 0;
      ++handshakes_ok_;
    } else if (ev->event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
      if (!refused_) PCMOE_WARN("net.auth_refused").kv("endpoint", endpoint_).kv("status", ev->value);
      refused_ = true;
    } else if (++failed_handshakes_ == kReportFailedHandshakes) {
      // The server drops a client it cannot decrypt without a verdict: say what that usually means.
      PCMOE_WARN("net.handshake_failed")
          .kv("endpoint", endpoint_)
          .kv("failures", failed_handshakes_)
          .kv("reason",
              "the CURVE handshake failed without an answer: the server's public key configured "
              "here is probably not the key of the server at this endpoint");
    }
  }
  return refused_;
}

void Client::reconnect() {
  zmq_disconnect(socket_.handle(), endpoint_.c_str());  // ENOENT when libzmq already dropped it
  try {
    socket_.connect(endpoint_);
  } catch (const zmq::error_t& e) {
    throw TransportError(fmt::format("cannot reconnect to '{}': {}", endpoint_, e.what()));
  }
  refused_ = false;
}

Client::Client(const ClientOptions& options) : Client(default_context(), options) {}

bool Client::send(const std::vector<proto::Blob>& frames, int timeout_ms) {
  if (refused()) reconnect();
  if (!wait_for_socket(socket_, ZMQ_POLLOUT, timeout_ms)) return false;
  if (send_multipart(socket_, nullptr, frames) != SendResult::sent) return false;
  bytes_sent_.fetch_add(payload_bytes(frames), std::memory_order_relaxed);
  return true;
}

std::optional<Incoming> Client::recv(int timeout_ms) {
  return receive(socket_, false, max_frames_, timeout_ms, bytes_received_);
}

}  // namespace pcmoe::net
