// Owns Poller (see poll.h).
#include "net/poll.h"

#include <fmt/format.h>

#include <chrono>

#include "common/error.h"

namespace pcmoe::net {

size_t Poller::add(zmq::socket_t& socket, short events) {
  items_.push_back({socket.handle(), 0, events, 0});
  return items_.size() - 1;
}

size_t Poller::add_fd(int fd, short events) {
  items_.push_back({nullptr, fd, events, 0});
  return items_.size() - 1;
}

int Poller::wait(int timeout_ms) {
  for (auto& it : items_) it.revents = 0;
  try {
    return zmq::poll(items_, std::chrono::milliseconds(timeout_ms));
  } catch (const zmq::error_t& e) {
    if (e.num() == EINTR) return 0;
    throw TransportError(fmt::format("poll failed: {}", e.what()));
  }
}

}  // namespace pcmoe::net
