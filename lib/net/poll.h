// Owns waiting on several sockets (and plain file descriptors) at once with a timeout.
// A Poller is used by the thread that owns the sockets it polls; the sockets must outlive it.
// EINTR (a signal, e.g. SIGTERM setting the stop flag) is a timeout, so loops re-check their
// stop condition; other failures throw TransportError.
#pragma once

#include <cstddef>
#include <vector>
#include <zmq.hpp>

namespace pcmoe::net {

class Poller {
 public:
  // Adds a socket or descriptor; returns its index for ready().
  size_t add(zmq::socket_t& socket, short events = ZMQ_POLLIN);
  size_t add_fd(int fd, short events = ZMQ_POLLIN);

  // Waits up to timeout_ms (-1: forever). Returns the number of ready items, 0 on timeout/EINTR.
  int wait(int timeout_ms);
  bool ready(size_t index, short events = ZMQ_POLLIN) const {
    return (items_.at(index).revents & events) != 0;
  }
  size_t size() const { return items_.size(); }

 private:
  std::vector<zmq::pollitem_t> items_;
};

}  // namespace pcmoe::net
