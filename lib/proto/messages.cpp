// Owns the small runtime pieces of the message contract (messages.h): type and error-code names,
// the message-type of a variant and known_type() (from the message table), Blob construction and
// WireTensor::numel.
#include "proto/messages.h"

#include <cstring>

namespace pcmoe::proto {

Blob Blob::copy_of(const void* p, size_t n) {
  auto buf = std::shared_ptr<uint8_t[]>(new uint8_t[n > 0 ? n : 1]);
  if (n > 0) std::memcpy(buf.get(), p, n);
  Blob b;
  b.data = buf.get();
  b.size = n;
  b.owner = std::shared_ptr<const void>(buf, buf.get());
  return b;
}

Blob Blob::from_string(std::string s) {
  auto str = std::make_shared<const std::string>(std::move(s));
  Blob b;
  b.data = reinterpret_cast<const uint8_t*>(str->data());
  b.size = str->size();
  b.owner = str;
  return b;
}

int64_t WireTensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) return -1;
    if (d != 0 && n > INT64_MAX / d) return -1;
    n *= d;
  }
  return n;
}

std::string_view msg_type_name(MsgType t) {
  switch (t) {
#define PCMOE_MSG_NAME(T, name, num) \
  case MsgType::name:                \
    return #name;
    PCMOE_MESSAGES(PCMOE_MSG_NAME)
#undef PCMOE_MSG_NAME
  }
  return "unknown";
}

bool known_type(uint64_t t) {
  switch (t) {
#define PCMOE_MSG_KNOWN(T, name, num) case num:
    PCMOE_MESSAGES(PCMOE_MSG_KNOWN)
#undef PCMOE_MSG_KNOWN
    return true;
    default:
      return false;
  }
}

std::string_view error_code_name(ErrorCode c) {
  switch (c) {
    case ErrorCode::ok:
      return "ok";
    case ErrorCode::malformed:
      return "malformed";
    case ErrorCode::bad_version:
      return "bad_version";
    case ErrorCode::unknown_type:
      return "unknown_type";
    case ErrorCode::bad_field:
      return "bad_field";
    case ErrorCode::too_large:
      return "too_large";
    case ErrorCode::bad_shape:
      return "bad_shape";
    case ErrorCode::bad_dtype:
      return "bad_dtype";
    case ErrorCode::non_finite:
      return "non_finite";
    case ErrorCode::out_of_order:
      return "out_of_order";
    case ErrorCode::unknown_party:
      return "unknown_party";
    case ErrorCode::config_mismatch:
      return "config_mismatch";
    case ErrorCode::busy:
      return "busy";
    case ErrorCode::out_of_memory:
      return "out_of_memory";
    case ErrorCode::internal:
      return "internal";
    case ErrorCode::unknown_request:
      return "unknown_request";
    case ErrorCode::duplicate_party:
      return "duplicate_party";
    case ErrorCode::stopping:
      return "stopping";
    case ErrorCode::unavailable:
      return "unavailable";
  }
  return "unknown";
}

namespace {
// The message type of each alternative of Message (from the table in messages.h).
template <class T>
constexpr MsgType type_for();
#define PCMOE_TYPE_FOR(T, name, num) \
  template <>                        \
  constexpr MsgType type_for<T>() {  \
    return MsgType::name;            \
  }
PCMOE_MESSAGES(PCMOE_TYPE_FOR)
#undef PCMOE_TYPE_FOR
}  // namespace

MsgType type_of(const Message& m) {
  return std::visit([](const auto& x) { return type_for<std::decay_t<decltype(x)>>(); }, m);
}

}  // namespace pcmoe::proto
