// Owns the small runtime pieces of the message contract (messages.h): type and error-code names,
// the message-type of a variant, Blob construction and WireTensor::numel.
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
    case MsgType::hello:
      return "hello";
    case MsgType::welcome:
      return "welcome";
    case MsgType::reject:
      return "reject";
    case MsgType::directory:
      return "directory";
    case MsgType::turn:
      return "turn";
    case MsgType::step_report:
      return "step_report";
    case MsgType::turn_done:
      return "turn_done";
    case MsgType::expert_load:
      return "expert_load";
    case MsgType::heartbeat:
      return "heartbeat";
    case MsgType::status_request:
      return "status_request";
    case MsgType::status:
      return "status";
    case MsgType::control:
      return "control";
    case MsgType::control_ack:
      return "control_ack";
    case MsgType::checkpoint_request:
      return "checkpoint_request";
    case MsgType::checkpoint_done:
      return "checkpoint_done";
    case MsgType::snapshot_request:
      return "snapshot_request";
    case MsgType::snapshot:
      return "snapshot";
    case MsgType::pool_request:
      return "pool_request";
    case MsgType::pool:
      return "pool";
    case MsgType::stop:
      return "stop";
    case MsgType::bye:
      return "bye";
    case MsgType::error:
      return "error";
    case MsgType::expert_forward:
      return "expert_forward";
    case MsgType::expert_forward_reply:
      return "expert_forward_reply";
    case MsgType::expert_backward:
      return "expert_backward";
    case MsgType::expert_backward_reply:
      return "expert_backward_reply";
    case MsgType::step_end:
      return "step_end";
    case MsgType::step_end_ack:
      return "step_end_ack";
    case MsgType::step_abort:
      return "step_abort";
    case MsgType::step_abort_ack:
      return "step_abort_ack";
  }
  return "unknown";
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
// The variant's alternatives in the order of Message; checked against MsgType at compile time.
template <class T>
constexpr MsgType type_for();
#define PCMOE_TYPE_FOR(T, t)        \
  template <>                       \
  constexpr MsgType type_for<T>() { \
    return MsgType::t;              \
  }
PCMOE_TYPE_FOR(Hello, hello)
PCMOE_TYPE_FOR(Welcome, welcome)
PCMOE_TYPE_FOR(Reject, reject)
PCMOE_TYPE_FOR(Directory, directory)
PCMOE_TYPE_FOR(Turn, turn)
PCMOE_TYPE_FOR(StepReport, step_report)
PCMOE_TYPE_FOR(TurnDone, turn_done)
PCMOE_TYPE_FOR(ExpertLoad, expert_load)
PCMOE_TYPE_FOR(Heartbeat, heartbeat)
PCMOE_TYPE_FOR(StatusRequest, status_request)
PCMOE_TYPE_FOR(Status, status)
PCMOE_TYPE_FOR(Control, control)
PCMOE_TYPE_FOR(ControlAck, control_ack)
PCMOE_TYPE_FOR(CheckpointRequest, checkpoint_request)
PCMOE_TYPE_FOR(CheckpointDone, checkpoint_done)
PCMOE_TYPE_FOR(SnapshotRequest, snapshot_request)
PCMOE_TYPE_FOR(Snapshot, snapshot)
PCMOE_TYPE_FOR(PoolRequest, pool_request)
PCMOE_TYPE_FOR(Pool, pool)
PCMOE_TYPE_FOR(Stop, stop)
PCMOE_TYPE_FOR(Bye, bye)
PCMOE_TYPE_FOR(ErrorMsg, error)
PCMOE_TYPE_FOR(ExpertForward, expert_forward)
PCMOE_TYPE_FOR(ExpertForwardReply, expert_forward_reply)
PCMOE_TYPE_FOR(ExpertBackward, expert_backward)
PCMOE_TYPE_FOR(ExpertBackwardReply, expert_backward_reply)
PCMOE_TYPE_FOR(StepEnd, step_end)
PCMOE_TYPE_FOR(StepEndAck, step_end_ack)
PCMOE_TYPE_FOR(StepAbort, step_abort)
PCMOE_TYPE_FOR(StepAbortAck, step_abort_ack)
#undef PCMOE_TYPE_FOR
}  // namespace

MsgType type_of(const Message& m) {
  return std::visit([](const auto& x) { return type_for<std::decay_t<decltype(x)>>(); }, m);
}

}  // namespace pcmoe::proto
