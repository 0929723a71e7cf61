// Owns the two socket roles of the protocol (proto/PROTOCOL.md, "Sockets"):
//   Server: a ROUTER that binds (the hub's control socket, a party's expert service);
//   Client: a DEALER that connects (a party to the hub and to each peer, pcmoe-ctl to the hub).
// Both are RAII over cppzmq with linger 0, bounded queues (high-water marks), an optional
// ZMQ_MAXMSGSIZE (a frame over it makes libzmq drop the connection: a DoS bound), optional ZMTP
// heartbeats (ZMQ_HEARTBEAT_IVL/TIMEOUT/TTL: a dead pipe is closed, and a DEALER reconnects) and
// optional CURVE. A Server never hands a routing id over (no ZMQ_ROUTER_HANDOVER): a connection
// that announces a routing id already in use is refused by libzmq, so no peer can take over or
// evict another's connection by choosing its routing id. Timeouts are values (std::nullopt / false), never
// exceptions; socket failures throw TransportError, bad options ConfigError. Threading: a Server or Client is
// used by ONE thread, the one that owns it (zmq sockets are not thread-safe); only the byte counters and
// set_allowed_client_keys may be used from others. Identify peers by Incoming::curve_key (authenticated),
// never by routing id (chosen by the peer). Linger is 0: messages still queued when a socket is destroyed are
// dropped, so wait for the peer's answer (or poll a little) before destroying a socket after a last message.
// A peer that vanished is seen by Server::send (false) once libzmq has processed the disconnect;
// until then sends to it are accepted and lost, which the protocol's timeouts cover.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "net/curve.h"
#include "net/frames.h"
#include "net/monitor.h"

namespace pcmoe::net {

class ZapHandler;

constexpr size_t kDefaultMaxFrames = 2 + (size_t(1) << 16) + 1;

// The ZMTP heartbeat timeout pcmoe uses with a heartbeat (PING) interval of `ivl_ms`: five
// intervals, at least 5 s (a busy machine must not drop live connections).
inline int zmtp_heartbeat_timeout_ms(int ivl_ms) { return ivl_ms * 5 > 5000 ? ivl_ms * 5 : 5000; }

struct ServerOptions {
  std::string endpoint;                          // bind endpoint, e.g. "tcp://127.0.0.1:*"
  std::optional<CurveKeyPair> curve;             // server keys; nullopt: no CURVE
  std::vector<std::string> allowed_client_keys;  // Z85; empty with CURVE on: any client key (logged)
  int64_t max_message_bytes = -1;                // ZMQ_MAXMSGSIZE, per frame; -1: no limit
  int send_hwm = 1000;                           // messages queued per peer
  int recv_hwm = 1000;
  int handshake_ivl_ms = 10000;
  int heartbeat_ivl_ms = 0;               // ZMTP PING every this (0: off)
  int heartbeat_timeout_ms = 0;           // no traffic this long after a PING: the pipe is closed
  size_t max_frames = kDefaultMaxFrames;  // frames kept per message (Incoming::truncated beyond)
};

class Server {
 public:
  // Binds. Throws ConfigError (bad endpoint or keys) or TransportError (bind failed).
  Server(zmq::context_t& ctx, const ServerOptions& options);
  explicit Server(const ServerOptions& options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // The bound endpoint (ephemeral ports resolved), e.g. "tcp://127.0.0.1:41235".
  const std::string& endpoint() const { return endpoint_; }
  bool curve_enabled() const { return zap_ != nullptr; }

  // The next message, waiting up to timeout_ms (-1: forever); nullopt on timeout or EINTR.
  std::optional<Incoming> recv(int timeout_ms);
  // Sends to the peer with routing id `peer`; false if it is unknown/gone or its queue is full.
  bool send(const std::string& peer, const std::vector<proto::Blob>& frames);

  // Replaces the allowed client keys (CURVE only; new handshakes use them). Thread-safe.
  void set_allowed_client_keys(const std::vector<std::string>& keys);

  zmq::socket_t& socket() { return socket_; }
  uint64_t bytes_sent() const { return bytes_sent_.load(std::memory_order_relaxed); }
  uint64_t bytes_received() const { return bytes_received_.load(std::memory_order_relaxed); }

 private:
  std::shared_ptr<ZapHandler> zap_;  // declared first: outlives the socket
  std::string zap_domain_;
  zmq::socket_t socket_;
  std::string endpoint_;
  size_t max_frames_;
  std::atomic<uint64_t> bytes_sent_{0}, bytes_received_{0};
};

struct ClientOptions {
  std::string endpoint;               // connect endpoint, e.g. "tcp://10.0.0.2:7001"
  std::optional<CurveKeyPair> curve;  // this client's keys; nullopt: no CURVE
  std::string server_public_key;      // Z85; required with curve
  int64_t max_message_bytes = -1;     // ZMQ_MAXMSGSIZE, per frame; -1: no limit
  int send_hwm = 1000;
  int recv_hwm = 1000;
  int reconnect_ivl_ms = 100;       // first retry after a lost connection
  int reconnect_ivl_max_ms = 5000;  // exponential back-off up to this
  int handshake_ivl_ms = 10000;
  int heartbeat_ivl_ms = 0;  // as ServerOptions
  int heartbeat_timeout_ms = 0;
  bool immediate = true;   // ZMQ_IMMEDIATE: queue only to completed connections
  std::string routing_id;  // ZMQ_ROUTING_ID seen by the server; "" lets libzmq choose
  size_t max_frames = kDefaultMaxFrames;
};

class Client {
 public:
  // Connects (asynchronously: the connection completes in the background).
  // Throws ConfigError (bad endpoint or keys) or TransportError.
  Client(zmq::context_t& ctx, const ClientOptions& options);
  explicit Client(const ClientOptions& options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  const std::string& endpoint() const { return endpoint_; }

  // Sends one message, waiting up to timeout_ms for a connected peer with room in its queue;
  // false if none within the timeout (with CURVE: also while the server refuses our key).
  // libzmq 4.3 never retries a connection whose CURVE handshake was refused, so send() first
  // reconnects a refused client: a party admitted later gets through on a later send.
  bool send(const std::vector<proto::Blob>& frames, int timeout_ms);
  std::optional<Incoming> recv(int timeout_ms);

  // True if the server refused this client's CURVE key since the last (re)connect.
  bool refused();
  // CURVE: handshakes that failed without an authentication verdict since the last one that
  // succeeded (the server could not decrypt us: usually server_public_key is not its key).
  int failed_handshakes() {
    refused();
    return failed_handshakes_;
  }
  // CURVE: at least one handshake succeeded since the socket was made.
  bool handshake_succeeded() {
    refused();
    return handshakes_ok_ > 0;
  }
  // Drops the connection and connects again (queued messages are lost).
  void reconnect();

  zmq::socket_t& socket() { return socket_; }
  uint64_t bytes_sent() const { return bytes_sent_.load(std::memory_order_relaxed); }
  uint64_t bytes_received() const { return bytes_received_.load(std::memory_order_relaxed); }

 private:
  zmq::socket_t socket_;
  std::unique_ptr<SocketMonitor> monitor_;  // CURVE only: handshake outcomes; destroyed first
  std::string endpoint_;
  size_t max_frames_;
  bool refused_ = false;
  int failed_handshakes_ = 0;
  uint64_t handshakes_ok_ = 0;
  std::atomic<uint64_t> bytes_sent_{0}, bytes_received_{0};
};

}  // namespace pcmoe::net
