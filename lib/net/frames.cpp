// Owns Blob <-> zmq message conversion and the multipart loops (see frames.h).
#include "net/frames.h"

#include <fmt/format.h>

#include <chrono>

#include "common/error.h"

namespace pcmoe::net {

proto::Blob to_blob(zmq::message_t&& msg) {
  auto holder = std::make_shared<zmq::message_t>(std::move(msg));
  proto::Blob b;
  b.data = static_cast<const uint8_t*>(holder->data());
  b.size = holder->size();
  b.owner = std::move(holder);
  return b;
}

zmq::message_t to_message(const proto::Blob& blob) {
  if (blob.size == 0) return zmq::message_t();
  if (blob.size < kZeroCopyMinBytes || !blob.owner) return zmq::message_t(blob.data, blob.size);
  // Zero-copy: libzmq calls the free function (possibly on its I/O thread) once sent.
  auto* keep = new std::shared_ptr<const void>(blob.owner);
  return zmq::message_t(
      const_cast<uint8_t*>(blob.data), blob.size,
      [](void*, void* hint) { delete static_cast<std::shared_ptr<const void>*>(hint); }, keep);
}

bool wait_for_socket(zmq::socket_t& socket, short events, int timeout_ms) {
  zmq::pollitem_t item{socket.handle(), 0, events, 0};
  try {
    return zmq::poll(&item, 1, std::chrono::milliseconds(timeout_ms)) > 0 && (item.revents & events);
  } catch (const zmq::error_t& e) {
    if (e.num() == EINTR) return false;
    throw TransportError(fmt::format("poll failed: {}", e.what()));
  }
}

void read_rest(zmq::socket_t& socket, zmq::message_t&& first, size_t max_frames, Incoming& out) {
  if (const char* uid = zmq_msg_gets(first.handle(), "User-Id")) out.curve_key = uid;
  bool more = first.more();
  out.bytes += first.size();
  out.frames.push_back(to_blob(std::move(first)));
  while (more) {
    zmq::message_t part;
    // The parts of one message arrive together: the rest is always there once the first is.
    if (!socket.recv(part, zmq::recv_flags::dontwait)) throw TransportError("multipart message ended early");
    more = part.more();
    out.bytes += part.size();
    if (out.frames.size() < max_frames) {
      out.frames.push_back(to_blob(std::move(part)));
    } else {
      out.truncated = true;
    }
  }
}

SendResult send_multipart(zmq::socket_t& socket, const std::string* routing_id,
                          const std::vector<proto::Blob>& frames) {
  PCMOE_CHECK(!frames.empty(), "send_multipart: no frames");
  try {
    if (routing_id) {
      if (!socket.send(zmq::buffer(*routing_id), zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
        return SendResult::would_block;
      }
    }
    for (size_t i = 0; i < frames.size(); ++i) {
      auto flags = zmq::send_flags::dontwait;
      if (i + 1 < frames.size()) flags = flags | zmq::send_flags::sndmore;
      // After the first part is accepted the others always are (multipart messages are atomic).
      if (!socket.send(to_message(frames[i]), flags)) {
        if (i == 0 && !routing_id) return SendResult::would_block;
        throw TransportError(fmt::format("send of frame {} of {} would block mid-message", i, frames.size()));
      }
    }
  } catch (const zmq::error_t& e) {
    if (e.num() == EHOSTUNREACH) return SendResult::unroutable;
    throw TransportError(fmt::format("send failed: {}", e.what()));
  }
  return SendResult::sent;
}

}  // namespace pcmoe::net
