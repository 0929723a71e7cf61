// Owns the conversion between protocol frames (proto::Blob) and zmq messages, and the multipart
// send/receive loops shared by Server and Client. Received frames are zero-copy (a Blob owns its
// zmq::message_t); frames of at least kZeroCopyMinBytes are sent zero-copy: their Blob owner is
// kept alive until libzmq's I/O thread has sent them, so the bytes must not be modified after
// send (Blob data is const by contract) and the owner may be destroyed on a zmq I/O thread.
// Functions act on a socket owned by the calling thread. Transport failures throw TransportError.
#pragma once

#include <cstddef>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "proto/messages.h"

namespace pcmoe::net {

constexpr size_t kZeroCopyMinBytes = 4096;

// One received multipart message (after any ROUTER routing-id frame).
struct Incoming {
  std::string peer;       // ROUTER routing id (opaque bytes); "" when received by a Client
  std::string curve_key;  // the sender's authenticated CURVE key (Z85, ZMQ "User-Id"); "" if none
  std::vector<proto::Blob> frames;
  size_t bytes = 0;        // payload bytes of all frames, dropped ones included
  bool truncated = false;  // more frames than the socket's max_frames: the extra were dropped
};

proto::Blob to_blob(zmq::message_t&& msg);
zmq::message_t to_message(const proto::Blob& blob);

// Waits up to timeout_ms (-1: forever) for `events` on one socket; false on timeout or EINTR.
bool wait_for_socket(zmq::socket_t& socket, short events, int timeout_ms);

// Reads the remaining parts of a message whose first part `first` was just received.
// Keeps at most max_frames frames (marks `truncated`), reads the User-Id of the first part.
void read_rest(zmq::socket_t& socket, zmq::message_t&& first, size_t max_frames, Incoming& out);

enum class SendResult { sent, would_block, unroutable };
// Sends `frames` as one multipart, preceded by `routing_id` when non-null (ROUTER), without
// blocking. would_block: the peer's queue is full or (DEALER) no peer is connected;
// unroutable: ROUTER_MANDATORY and no such peer. Throws TransportError on other failures.
SendResult send_multipart(zmq::socket_t& socket, const std::string* routing_id,
                          const std::vector<proto::Blob>& frames);

}  // namespace pcmoe::net
