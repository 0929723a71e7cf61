// Owns SocketMonitor (see monitor.h). Event frames (libzmq 4.x, v1): [u16 event, u32 value]
// in host byte order, then the endpoint string.
#include "net/monitor.h"

#include <fmt/format.h>

#include <atomic>
#include <chrono>
#include <cstring>

#include "common/error.h"
#include "net/frames.h"

namespace pcmoe::net {

std::string event_name(int event) {
  switch (event) {
    case ZMQ_EVENT_CONNECTED:
      return "connected";
    case ZMQ_EVENT_CONNECT_DELAYED:
      return "connect_delayed";
    case ZMQ_EVENT_CONNECT_RETRIED:
      return "connect_retried";
    case ZMQ_EVENT_LISTENING:
      return "listening";
    case ZMQ_EVENT_BIND_FAILED:
      return "bind_failed";
    case ZMQ_EVENT_ACCEPTED:
      return "accepted";
    case ZMQ_EVENT_ACCEPT_FAILED:
      return "accept_failed";
    case ZMQ_EVENT_CLOSED:
      return "closed";
    case ZMQ_EVENT_CLOSE_FAILED:
      return "close_failed";
    case ZMQ_EVENT_DISCONNECTED:
      return "disconnected";
    case ZMQ_EVENT_MONITOR_STOPPED:
      return "monitor_stopped";
    case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
      return "handshake_failed_no_detail";
    case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
      return "handshake_succeeded";
    case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
      return "handshake_failed_protocol";
    case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
      return "handshake_failed_auth";
    default:
      return fmt::format("event_{:#x}", event);
  }
}

SocketMonitor::SocketMonitor(zmq::context_t& ctx, zmq::socket_t& target, int events)
    : target_(target), pair_(ctx, zmq::socket_type::pair) {
  static std::atomic<uint64_t> next_id{1};
  std::string ep = fmt::format("inproc://pcmoe.monitor.{}", next_id.fetch_add(1));
  if (zmq_socket_monitor(target.handle(), ep.c_str(), events) != 0) {
    throw TransportError(fmt::format("zmq_socket_monitor failed: {}", zmq_strerror(zmq_errno())));
  }
  pair_.set(zmq::sockopt::linger, 0);
  pair_.connect(ep);
}

SocketMonitor::~SocketMonitor() {
  if (target_.handle() != nullptr) zmq_socket_monitor(target_.handle(), nullptr, 0);
}

std::optional<SocketEvent> SocketMonitor::next(int timeout_ms) {
  if (!wait_for_socket(pair_, ZMQ_POLLIN, timeout_ms)) return std::nullopt;
  zmq::message_t head, addr;
  if (!pair_.recv(head, zmq::recv_flags::dontwait)) return std::nullopt;
  SocketEvent ev;
  if (head.size() >= 6) {
    uint16_t e16;
    uint32_t v32;
    std::memcpy(&e16, head.data(), 2);
    std::memcpy(&v32, static_cast<const char*>(head.data()) + 2, 4);
    ev.event = e16;
    ev.value = static_cast<int>(v32);
  }
  if (head.more() && pair_.recv(addr, zmq::recv_flags::dontwait)) ev.endpoint = addr.to_string();
  return ev;
}

std::optional<SocketEvent> SocketMonitor::wait_for(int mask, int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (true) {
    auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() < 0) return std::nullopt;
    auto ev = next(static_cast<int>(left.count()));
    if (!ev) return std::nullopt;
    if (ev->event & mask) return ev;
  }
}

}  // namespace pcmoe::net
