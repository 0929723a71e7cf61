// Owns DecodeError construction and its mapping to an error reply (see decode_error.h).
#include "proto/decode_error.h"

#include <fmt/format.h>

namespace pcmoe::proto {

DecodeError::DecodeError(ErrorCode c, const std::string& reason, MsgType t, uint64_t rid)
    : ProtocolError(fmt::format("{}: {}", error_code_name(c), reason)),
      code(c),
      type(t),
      request_id(rid),
      reason_(reason) {}

ErrorMsg to_error_msg(const DecodeError& e) {
  ErrorMsg m;
  m.code = static_cast<uint16_t>(e.code);
  m.reason = e.reason();
  m.in_reply_to = static_cast<uint16_t>(e.type);
  m.request_id = e.request_id;
  return m;
}

}  // namespace pcmoe::proto
