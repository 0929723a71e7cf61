// The request trace's keys (common/trace.h) for the party's messages: which remote request a
// message belongs to, and a printable form of a ZeroMQ routing id.
#pragma once

#include <cstdint>
#include <string>
#include <utility>

#include "proto/messages.h"

namespace pcmoe::party {

// A request's id and 'f' (an expert_forward or its reply) or 'b' (an expert_backward or its
// reply); {0, 0} for any other message.
inline std::pair<uint64_t, char> trace_key(const proto::Message& m) {
  if (const auto* x = std::get_if<proto::ExpertForward>(&m)) return {x->request_id, 'f'};
  if (const auto* x = std::get_if<proto::ExpertForwardReply>(&m)) return {x->request_id, 'f'};
  if (const auto* x = std::get_if<proto::ExpertBackward>(&m)) return {x->request_id, 'b'};
  if (const auto* x = std::get_if<proto::ExpertBackwardReply>(&m)) return {x->request_id, 'b'};
  return {0, 0};
}

// A routing id (binary) in hex.
inline std::string trace_peer(const std::string& routing_id) {
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (unsigned char c : routing_id) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

}  // namespace pcmoe::party
