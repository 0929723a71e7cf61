// Owns socket event monitoring (zmq_socket_monitor): connection, disconnection and handshake
// events of one socket, read as values. Used by tests to synchronise on real events instead of
// sleeping, and by daemons that log peer connections or notice a refused CURVE handshake
// (ZMQ_EVENT_HANDSHAKE_FAILED_AUTH on the client side).
// Threading: create, read and destroy it on the thread that owns the monitored socket.
// Destroy it BEFORE the monitored socket (declare it after), and read its events: libzmq blocks
// the monitored socket once 1000 unread events pile up. A socket has at most one monitor
// (libzmq replaces the previous one): a CURVE Client already monitors its own socket.
#pragma once

#include <optional>
#include <string>
#include <zmq.hpp>

namespace pcmoe::net {

struct SocketEvent {
  int event = 0;  // ZMQ_EVENT_*
  int value = 0;  // fd, errno or ZAP status code, depending on the event
  std::string endpoint;
};

std::string event_name(int event);  // e.g. "handshake_failed_auth"

class SocketMonitor {
 public:
  // Starts monitoring `target` for `events` (a ZMQ_EVENT_* mask). Throws TransportError.
  SocketMonitor(zmq::context_t& ctx, zmq::socket_t& target, int events = ZMQ_EVENT_ALL);
  ~SocketMonitor();  // stops monitoring the target
  SocketMonitor(const SocketMonitor&) = delete;
  SocketMonitor& operator=(const SocketMonitor&) = delete;

  // The next event, waiting up to timeout_ms; nullopt on timeout.
  std::optional<SocketEvent> next(int timeout_ms);
  // Skips events until one in `mask` arrives; nullopt if none within timeout_ms.
  std::optional<SocketEvent> wait_for(int mask, int timeout_ms);

  zmq::socket_t& socket() { return pair_; }

 private:
  zmq::socket_t& target_;
  zmq::socket_t pair_;
};

}  // namespace pcmoe::net
