// Owns message-level send/receive over Server and Client (see rpc.h).
#include "net/rpc.h"

#include <fmt/format.h>

#include <chrono>

namespace pcmoe::net {

bool send_message(Client& client, const proto::Message& m, int timeout_ms) {
  return client.send(proto::encode(m), timeout_ms);
}

std::optional<proto::Message> recv_message(Client& client, int timeout_ms, const proto::Limits& limits) {
  auto in = client.recv(timeout_ms);
  if (!in) return std::nullopt;
  if (in->truncated) {
    throw proto::DecodeError(proto::ErrorCode::too_large,
                             fmt::format("more than {} frames", in->frames.size()));
  }
  return proto::decode(in->frames, limits);
}

std::optional<Request> recv_request(Server& server, int timeout_ms, const proto::Limits& limits) {
  auto in = server.recv(timeout_ms);
  if (!in) return std::nullopt;
  Request req;
  req.peer = std::move(in->peer);
  req.curve_key = std::move(in->curve_key);
  req.bytes = in->bytes;
  try {
    if (in->truncated) {
      throw proto::DecodeError(proto::ErrorCode::too_large,
                               fmt::format("more than {} frames", in->frames.size()));
    }
    req.message = proto::decode(in->frames, limits);
  } catch (const proto::DecodeError& e) {
    req.error = e;
  }
  return req;
}

bool reply(Server& server, const std::string& peer, const proto::Message& m) {
  return server.send(peer, proto::encode(m));
}

bool reply_error(Server& server, const Request& req) {
  if (!req.error) return false;
  return reply(server, req.peer, proto::to_error_msg(*req.error));
}

std::optional<std::vector<proto::Blob>> send_raw(zmq::context_t& ctx, const ClientOptions& options,
                                                 const std::vector<proto::Blob>& frames, int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  Client client(ctx, options);
  if (!client.send(frames, timeout_ms)) return std::nullopt;
  auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  auto in = client.recv(std::max<int>(0, static_cast<int>(left.count())));
  if (!in) return std::nullopt;
  return std::move(in->frames);
}

}  // namespace pcmoe::net
