// Owns the decoder's contract with its callers: the size limits a receiver enforces (Limits), the
// exception a rejected message becomes (DecodeError) and the error reply it maps to (to_error_msg).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "common/error.h"
#include "proto/messages.h"

namespace pcmoe::proto {

// Bounds enforced by decode() before anything is allocated. Defaults suit a party's expert
// service; the hub may use smaller ones. All sizes in bytes unless named otherwise.
struct Limits {
  size_t max_header_bytes = 1 << 20;         // frame 1 (msgpack header)
  size_t max_frame_bytes = size_t(1) << 31;  // any single frame
  int64_t max_rows = int64_t(1) << 24;       // rows of an activation / expert-id tensor
  int64_t d_model = 0;                       // 0: any width; else rows/grads must be [n, d_model]
  size_t max_tensors = 1 << 16;              // raw frames after the header
  size_t max_string_bytes = 1 << 16;         // any msgpack string
  size_t max_array_len = 1 << 20;            // any msgpack array (elements)
};

// A message was rejected. `code` is what the error reply carries; `type` is the message type when
// the header named a known one (MsgType{0} otherwise); `request_id` is the header's "rid" when it
// could be read (0 otherwise). what() = "<code name>: <reason>". Copyable; thrown by value.
class DecodeError : public ProtocolError {
 public:
  DecodeError(ErrorCode code, const std::string& reason, MsgType type = MsgType{0}, uint64_t request_id = 0);

  ErrorCode code;
  MsgType type;
  uint64_t request_id;
  const std::string& reason() const { return reason_; }

 private:
  std::string reason_;
};

// The error reply for a rejected message (code, reason, in_reply_to = type, request_id).
ErrorMsg to_error_msg(const DecodeError& e);

}  // namespace pcmoe::proto
