// Owns the C++ mirror of proto/PROTOCOL.md: every message of the pcmoe wire protocol as a plain
// struct, the message-type and error-code numbers, and the protocol version. No msgpack, no zmq,
// no libtorch here: codec.h turns these into frames and back. Numbers are part of the protocol:
// never renumber; add new ones (minor version bump).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "common/dtype.h"

namespace pcmoe::proto {

// ---- versioning ----
// Frame 0 of every message is the ASCII tag "PCMOE/<major>"; the header carries the minor.
constexpr uint32_t kProtocolMajor = 1;
constexpr uint32_t kProtocolMinor = 2;

// ---- raw frames ----
// Bytes of one raw frame. `owner` keeps the storage alive (a std::string, a zmq message, ...), so
// frames received from the network are decoded without copying.
struct Blob {
  std::shared_ptr<const void> owner;
  const uint8_t* data = nullptr;
  size_t size = 0;

  static Blob copy_of(const void* p, size_t n);
  static Blob from_string(std::string s);
  std::string to_string() const { return std::string(reinterpret_cast<const char*>(data), size); }
};

// A tensor on the wire: dtype and shape travel in the header, the bytes as one raw frame. An fp8
// tensor (protocol 1.1) also has scales: one fp32 per `scale_block` consecutive elements of its
// last dimension, as a second raw frame; its value is fp8(data) * scale (common/fp8.h).
struct WireTensor {
  DType dtype = DType::f32;
  std::vector<int64_t> shape;
  Blob data;                 // numel(shape) * dtype_size(dtype) bytes, row-major, little endian
  uint32_t scale_block = 0;  // fp8 only: elements per scale (divides the last dimension)
  Blob scales;               // fp8 only: numel / scale_block fp32 values, little endian

  int64_t numel() const;
};

// ---- the message table ----
// The one list of message types: X(Struct, name, number). The enum, the names, the Message
// variant, type_of() and the decoder's switch are generated from it; adding a message means a
// line here, its struct below and its field list in fields.h. Numbers are part of the protocol.
#define PCMOE_MESSAGES(X)                           \
  /* party <-> hub (party DEALER -> hub ROUTER) */  \
  X(Hello, hello, 1)                                \
  X(Welcome, welcome, 2)                            \
  X(Reject, reject, 3)                              \
  X(Directory, directory, 4)                        \
  X(Turn, turn, 5)                                  \
  X(StepReport, step_report, 6)                     \
  X(TurnDone, turn_done, 7)                         \
  X(ExpertLoad, expert_load, 8)                     \
  X(Heartbeat, heartbeat, 9)                        \
  X(StatusRequest, status_request, 10)              \
  X(Status, status, 11)                             \
  X(Control, control, 12)                           \
  X(ControlAck, control_ack, 13)                    \
  X(CheckpointRequest, checkpoint_request, 14)      \
  X(CheckpointDone, checkpoint_done, 15)            \
  X(SnapshotRequest, snapshot_request, 16)          \
  X(Snapshot, snapshot, 17)                         \
  X(PoolRequest, pool_request, 18)                  \
  X(Pool, pool, 19)                                 \
  X(Stop, stop, 20)                                 \
  X(Bye, bye, 21)                                   \
  X(ErrorMsg, error, 22)                            \
  X(TurnNotice, turn_notice, 23)          /* 1.2 */ \
  X(RoundClose, round_close, 24)          /* 1.2 */ \
  X(RoundNorm, round_norm, 25)            /* 1.2 */ \
  X(RoundCommit, round_commit, 26)        /* 1.2 */ \
  X(RoundCommitAck, round_commit_ack, 27) /* 1.2 */ \
  /* party <-> party expert service */              \
  X(ExpertForward, expert_forward, 30)              \
  X(ExpertForwardReply, expert_forward_reply, 31)   \
  X(ExpertBackward, expert_backward, 32)            \
  X(ExpertBackwardReply, expert_backward_reply, 33) \
  X(StepEnd, step_end, 34)                          \
  X(StepEndAck, step_end_ack, 35)                   \
  X(StepAbort, step_abort, 36)                      \
  X(StepAbortAck, step_abort_ack, 37)

// ---- message types ----
#define PCMOE_MSG_ENUM(T, name, num) name = num,
enum class MsgType : uint16_t { PCMOE_MESSAGES(PCMOE_MSG_ENUM) };
#undef PCMOE_MSG_ENUM

// ---- error codes (ErrorMsg.code) ----
enum class ErrorCode : uint16_t {
  ok = 0,
  malformed = 1,         // frames or msgpack header cannot be decoded
  bad_version = 2,       // wrong protocol major (tag) or unsupported minor
  unknown_type = 3,      // message type not known, or not accepted on this socket
  bad_field = 4,         // a required field is missing or has the wrong type or range
  too_large = 5,         // over a size limit (frame, rows, header)
  bad_shape = 6,         // tensor shape does not match the header / the model
  bad_dtype = 7,         // tensor dtype not allowed here
  non_finite = 8,        // NaN or Inf in a tensor
  out_of_order = 9,      // unexpected in the current state (e.g. backward before forward)
  unknown_party = 10,    // sender not in the federation / not authenticated
  config_mismatch = 11,  // model-config hash differs
  busy = 12,             // back-pressure: try again later
  out_of_memory = 13,    // the request did not fit in the memory limit
  internal = 14,         // the receiver failed; the request may be retried
  unknown_request = 15,  // request id not found (expired or never seen)
  duplicate_party = 16,  // a live party with this id is already registered
  stopping = 17,         // the receiver is shutting down
  unavailable = 18,      // the expert or party is not available
};

std::string_view msg_type_name(MsgType t);
std::string_view error_code_name(ErrorCode c);

// ---- party <-> hub ----
struct Hello {
  std::string party_id;
  uint32_t proto_major = kProtocolMajor;
  uint32_t proto_minor = kProtocolMinor;
  std::string model_hash;        // model_config_hash() of the party's preset
  std::string expert_endpoint;   // where the party's expert service can be reached
  std::string curve_public_key;  // Z85 public key of the party's expert service ("" if CURVE off)
  uint64_t memory_budget_bytes = 0;
  int64_t resume_step = 0;  // the step of the checkpoint it restored (0: fresh)
  uint64_t session = 0;     // optional (1.2): the `sess` of this process's last welcome (0: none)
};

struct PartyEntry {
  std::string party_id;
  uint32_t index = 0;  // position in the placement (expert e of a layer lives on party e mod n)
  std::string endpoint;
  std::string curve_public_key;
  bool alive = true;
};

struct Welcome {
  uint32_t party_index = 0;
  std::string run_id;
  int64_t total_steps = 0;
  int64_t step = 0;  // the federation's current global step
  uint32_t steps_per_turn = 1;
  std::vector<uint32_t> moe_layers;
  uint32_t n_experts = 0;
  std::vector<PartyEntry> directory;
  // placement[i][e] = index of the party hosting expert e of MoE layer moe_layers[i].
  std::vector<std::vector<uint32_t>> placement;
  uint64_t directory_epoch = 0;
  std::string schedule;  // optional (1.2): "concurrent" for concurrent rounds; "" = sequential turns
  uint64_t session = 0;  // optional (1.2): this registration's session token (0: not sent)
};

struct Reject {
  uint16_t code = 0;  // ErrorCode
  std::string reason;
};

// The directory changed (a party joined, was lost, or came back).
struct Directory {
  uint64_t directory_epoch = 0;
  std::vector<PartyEntry> directory;
};

// The hub grants the receiving party the next turn: n_steps optimizer steps from global step_begin.
struct Turn {
  uint64_t turn_id = 0;
  uint64_t round = 0;
  int64_t step_begin = 0;
  uint32_t n_steps = 1;
};

// Sent after each step of a turn. Only aggregates: no token, label, text or activation.
struct StepReport {
  uint64_t turn_id = 0;
  int64_t step = 0;
  double loss = 0;      // mean cross-entropy of the step's batch (nats/token)
  double aux_loss = 0;  // load-balancing + z loss
  uint64_t tokens = 0;
  double lr = 0;
  double step_ms = 0;
  uint64_t bytes_sent = 0;
  uint64_t bytes_received = 0;
  uint64_t peak_memory_bytes = 0;
  // Per MoE layer (order of Welcome.moe_layers), per expert: tokens routed and mean gate prob.
  std::vector<std::vector<uint64_t>> expert_counts;
  std::vector<std::vector<double>> gate_mean;
  double eval_loss = -1;  // held-out loss if evaluated at this step, else -1
};

struct TurnDone {
  uint64_t turn_id = 0;
  uint32_t steps_done = 0;
  bool ok = true;
  std::string reason;         // why the turn ended early (ok = false)
  std::string suspect_party;  // a peer that failed to answer, if any
};

// Global expert load, broadcast by the hub after each report.
struct ExpertLoad {
  int64_t step = 0;
  // Per MoE layer, per expert: share of routed tokens over all parties (sums to 1 per layer),
  // running since the start and over the last `window_steps` steps.
  std::vector<std::vector<double>> running;
  std::vector<std::vector<double>> window;
  uint32_t window_steps = 0;
  std::vector<uint8_t> alive;  // per party index: 1 if its experts are available
};

struct Heartbeat {
  uint64_t seq = 0;
  int64_t step = 0;
  std::string state;  // sender's state name, e.g. "training", "serving", "waiting"
};

struct StatusRequest {
  bool include_load = true;
};

struct PartyStatus {
  std::string party_id;
  uint32_t index = 0;
  bool alive = false;
  std::string state;
  double last_seen_ms_ago = 0;
  int64_t steps_done = 0;
  uint64_t tokens = 0;
  double last_loss = -1;
  double last_eval_loss = -1;
  double tokens_per_s = 0;
  uint64_t peak_memory_bytes = 0;
  uint64_t memory_budget_bytes = 0;
  uint64_t bytes_sent = 0;
  uint64_t bytes_received = 0;
  std::string endpoint;
};

struct Status {
  std::string run_id;
  std::string state;  // "waiting" | "training" | "paused" | "finished" | "stopping"
  int64_t step = 0;
  int64_t total_steps = 0;
  std::string turn_party;  // who holds the turn ("" if nobody)
  double uptime_s = 0;
  std::vector<PartyStatus> parties;
  std::vector<uint32_t> moe_layers;
  std::vector<std::vector<uint32_t>> placement;
  std::vector<std::vector<double>> load_running;
  std::vector<std::vector<double>> load_window;
  int64_t pool_step = -1;  // step of the latest complete expert-pool snapshot (-1: none)
};

// pcmoe-ctl -> hub.
struct Control {
  std::string action;  // "pause" | "resume" | "stop" | "checkpoint" | "snapshot"
};

struct ControlAck {
  bool ok = true;
  std::string message;
};

struct CheckpointRequest {
  int64_t step = 0;
};

struct CheckpointDone {
  int64_t step = 0;
  bool ok = true;
  std::string path;
  std::string reason;
};

struct SnapshotRequest {
  uint64_t snapshot_id = 0;
};

// A host's experts. Tensors named "l<layer>.e<expert>.<param>" (e.g. "l1.e5.w1").
struct Snapshot {
  uint64_t snapshot_id = 0;
  int64_t step = 0;
  std::vector<std::string> names;
  std::vector<WireTensor> tensors;
};

struct PoolRequest {
  int64_t min_step = 0;
};

// The latest complete expert pool (same naming as Snapshot); step -1 and no tensors if none yet.
struct Pool {
  int64_t step = -1;
  std::vector<std::string> names;
  std::vector<WireTensor> tensors;
  // optional (1.2): per party index, the global step of that party's experts in this pool (its
  // snapshot's step, or the older one carried from an earlier pool); empty if not sent.
  std::vector<uint64_t> party_steps;
};

struct Stop {
  std::string reason;  // "finished" | "operator" | ...
};

struct Bye {
  std::string reason;
};

// ---- concurrent rounds (1.2, hub.schedule: concurrent) ----
// Every live party trained step `step` of the round (or the round failed): the hub asks each live
// party, as a host, for its experts' gradients accumulated in the round.
struct RoundClose {
  int64_t step = 0;
};

// A host's answer: the squared L2 norm of its experts' accumulated (summed) gradients of the round.
struct RoundNorm {
  int64_t step = 0;
  double grad_sq = 0;
  uint32_t experts = 0;  // experts with gradients
};

// The round's expert update: apply = true: every expert with gradients takes one optimizer step on
// its accumulated gradients multiplied by `scale` (1 / parties x the round's clip factor);
// apply = false: the round's expert gradients are dropped (no expert steps).
struct RoundCommit {
  int64_t step = 0;
  bool apply = true;
  double scale = 1.0;
};

struct RoundCommitAck {
  int64_t step = 0;
  uint32_t experts_stepped = 0;
};

struct ErrorMsg {
  uint16_t code = 0;  // ErrorCode
  std::string reason;
  uint16_t in_reply_to = 0;  // MsgType of the offending message (0 if unknown)
  uint64_t request_id = 0;   // req_id of the offending request, if it had one
};

// 1.2: hub -> every live party, when a turn begins (the parties that hold it and its steps) and
// when it ends (`holders` empty): what an expert host needs to admit requests only from the
// party that holds the turn for that step.
struct TurnNotice {
  uint64_t turn_id = 0;
  uint64_t round = 0;
  std::vector<uint32_t> holders;  // party indices holding the turn; empty: no turn in progress
  int64_t step_begin = 0;         // the turn's first global step (the global step, when none)
  uint32_t n_steps = 0;           // its steps (0 when none)
};

// ---- party <-> party expert service ----
enum class ExpertMode : uint8_t { train = 0, eval = 1 };

// Rows routed to the host's experts. Only hidden states and expert ids: no positions, sequence
// ids, token ids or gate weights; rows are shuffled across the whole batch by the requester.
struct ExpertForward {
  uint64_t request_id = 0;
  std::string requester;  // party id of the sender
  int64_t step = 0;
  uint32_t layer = 0;  // model layer index (a MoE layer)
  ExpertMode mode = ExpertMode::train;
  WireTensor expert_ids;  // [rows] int16 or int32: expert index within the layer
  WireTensor rows;        // [rows, d_model] fp32/bf16/fp16
};

// The host's side of one request (protocol 1.1, optional key `tl` of the replies): when it took
// the request off its socket and handed the reply to its socket (steady clock, ns: comparable with
// the requester's only on the same machine), and the durations in between (us).
enum TimelineIndex : size_t {
  kTlReceivedNs = 0,  // request taken off the socket
  kTlRepliedNs,       // reply handed to the socket
  kTlStageUs,         // request bytes into (pinned) staging memory
  kTlH2dUs,           // host-to-device copy and conversion (device time)
  kTlComputeUs,       // the experts (device time)
  kTlD2hUs,           // device-to-host copy of the reply (and its conversion)
  kTlCheckUs,         // the NaN/Inf check of the reply
  kTlCount
};

struct ExpertForwardReply {
  uint64_t request_id = 0;
  WireTensor outputs;              // [rows, d_model], same dtype as the request rows
  std::vector<uint64_t> timeline;  // optional (1.1): TimelineIndex, empty if not sent
};

struct ExpertBackward {
  uint64_t request_id = 0;  // of the forward this is the backward of
  WireTensor grad_outputs;  // [rows, d_model]
};

struct ExpertBackwardReply {
  uint64_t request_id = 0;
  double grad_sq_norm = 0;         // squared norm of the expert-parameter grads this request produced
  WireTensor grad_inputs;          // [rows, d_model]
  std::vector<uint64_t> timeline;  // optional (1.1): TimelineIndex, empty if not sent
};

// The requester finished its step: the host applies its experts' optimizer for exactly the
// gradients of this step, scaled by clip_scale (global-norm clipping computed by the requester).
struct StepEnd {
  std::string requester;
  int64_t step = 0;
  double clip_scale = 1.0;
};

struct StepEndAck {
  int64_t step = 0;
  uint32_t experts_stepped = 0;
};

struct StepAbort {
  std::string requester;
  int64_t step = 0;
  std::string reason;
};

struct StepAbortAck {
  int64_t step = 0;
};

namespace detail {
template <class First, class... T>
struct DropFirst {
  using type = std::variant<T...>;
};
}  // namespace detail
#define PCMOE_MSG_ALT(T, name, num) , T
// Every message, in the order of the table.
using Message = detail::DropFirst<void PCMOE_MESSAGES(PCMOE_MSG_ALT)>::type;
#undef PCMOE_MSG_ALT

MsgType type_of(const Message& m);
// True for a number of the table.
bool known_type(uint64_t t);

}  // namespace pcmoe::proto
