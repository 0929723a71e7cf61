// Owns request/reply on top of Server and Client: encode-and-send, receive-and-decode, the error
// reply for a rejected message, and send_raw() for tests that feed arbitrary frames to a live
// daemon (fuzzing a socket). Same threading as the socket passed in (its owner thread only).
// Timeouts are values; a message a peer got wrong is a DecodeError value (Server side) or a
// thrown DecodeError (Client side); transport failures throw TransportError.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "net/socket.h"
#include "proto/codec.h"

namespace pcmoe::net {

// ---- client side ----
// false if no connected peer could take the message within timeout_ms.
bool send_message(Client& client, const proto::Message& m, int timeout_ms);
// The next message, decoded; nullopt on timeout. Throws proto::DecodeError for a bad message.
std::optional<proto::Message> recv_message(Client& client, int timeout_ms, const proto::Limits& limits);

// ---- server side ----
struct Request {
  std::string peer;       // routing id, for the reply
  std::string curve_key;  // authenticated sender key (Z85), "" without CURVE
  size_t bytes = 0;
  std::optional<proto::Message> message;    // the decoded message, or
  std::optional<proto::DecodeError> error;  // why it was rejected (answer with reply_error)
};

// The next request, decoded or rejected; nullopt on timeout. Never throws for bad input.
std::optional<Request> recv_request(Server& server, int timeout_ms, const proto::Limits& limits);
// false if the peer is gone or its queue is full.
bool reply(Server& server, const std::string& peer, const proto::Message& m);
// Sends the ErrorMsg for req.error (to_error_msg) to req.peer.
bool reply_error(Server& server, const Request& req);

// ---- tests and tools ----
// Connects a fresh DEALER to `options.endpoint`, sends `frames` exactly as given (no tag or header
// added), and waits up to timeout_ms for one reply (nullopt: not sent or no reply in time).
std::optional<std::vector<proto::Blob>> send_raw(zmq::context_t& ctx, const ClientOptions& options,
                                                 const std::vector<proto::Blob>& frames, int timeout_ms);

}  // namespace pcmoe::net
