// Owns the header key of every message field: the one list that the encoder, the decoder and
// describe() all walk, so they cannot disagree. proto/PROTOCOL.md documents the same keys; a key
// here is part of the protocol (never rename; new keys need a minor version bump and must be
// optional for receivers). Tensor frames follow the header in the order the tensors appear below.
//
// Each message type has one overload fields(v, m, Of<Type>) (m a Type or a const Type). A visitor
// V provides: str, boolean, uint (unsigned, with [lo, hi]), int64 (with lo), real (with a Real
// rule), enumeration, uints, optional_uint / optional_uints and optional_str (keys added by a minor
// version: written only when non-zero / non-empty, 0 / empty when absent), uint_matrix, real_matrix,
// strs, tensor, tensors and entries (a list of nested maps). Internal to lib/proto (and its tests).
#pragma once

#include <cstdint>
#include <limits>

#include "proto/messages.h"
#include "proto/wire_tensor.h"

namespace pcmoe::proto {

// Constraints on a float field.
enum class Real : uint8_t {
  any,            // NaN and Inf allowed (reported statistics, e.g. a diverged loss)
  finite,         // no NaN, no Inf
  finite_nonneg,  // finite and >= 0
  nonneg,         // >= 0 (+Inf allowed), never NaN
};

constexpr int64_t kAnyStep = 0;    // lower bound of a step field
constexpr int64_t kNoneStep = -1;  // lower bound of a step field where -1 means "none"

// Selects the field list of message type T: fields(v, m, Of<T>{}), m a T or a const T.
template <class T>
struct Of {};

// ---- party <-> hub ----
template <class V, class M>
void fields(V& v, M& m, Of<Hello>) {
  v.str("pid", m.party_id);
  v.uint("pmaj", m.proto_major);
  v.uint("pmin", m.proto_minor);
  v.str("mhash", m.model_hash);
  v.str("ep", m.expert_endpoint);
  v.str("ckey", m.curve_public_key);
  v.uint("mem", m.memory_budget_bytes);
  v.int64("rstep", m.resume_step, kAnyStep);
  v.optional_uint("sess", m.session);  // 1.2
}

template <class V, class M>
void fields(V& v, M& m, Of<PartyEntry>) {
  v.str("pid", m.party_id);
  v.uint("idx", m.index);
  v.str("ep", m.endpoint);
  v.str("ckey", m.curve_public_key);
  v.boolean("alive", m.alive);
}

template <class V, class M>
void fields(V& v, M& m, Of<Welcome>) {
  v.uint("pidx", m.party_index);
  v.str("run", m.run_id);
  v.int64("total", m.total_steps, kAnyStep);
  v.int64("step", m.step, kAnyStep);
  v.uint("spt", m.steps_per_turn, 1);
  v.uints("moe", m.moe_layers);
  v.uint("nexp", m.n_experts);
  v.entries("dir", m.directory);
  v.uint_matrix("place", m.placement);
  v.uint("epoch", m.directory_epoch);
  v.optional_str("sched", m.schedule);  // 1.2
  v.optional_uint("sess", m.session);   // 1.2
}

template <class V, class M>
void fields(V& v, M& m, Of<Reject>) {
  v.uint("code", m.code);
  v.str("why", m.reason);
}

template <class V, class M>
void fields(V& v, M& m, Of<Directory>) {
  v.uint("epoch", m.directory_epoch);
  v.entries("dir", m.directory);
}

template <class V, class M>
void fields(V& v, M& m, Of<Turn>) {
  v.uint("turn", m.turn_id);
  v.uint("round", m.round);
  v.int64("sbeg", m.step_begin, kAnyStep);
  v.uint("nst", m.n_steps, 1);
}

template <class V, class M>
void fields(V& v, M& m, Of<StepReport>) {
  v.uint("turn", m.turn_id);
  v.int64("step", m.step, kAnyStep);
  v.real("loss", m.loss, Real::any);
  v.real("aux", m.aux_loss, Real::any);
  v.uint("tok", m.tokens);
  v.real("lr", m.lr, Real::any);
  v.real("ms", m.step_ms, Real::any);
  v.uint("bsent", m.bytes_sent);
  v.uint("brecv", m.bytes_received);
  v.uint("peak", m.peak_memory_bytes);
  v.uint_matrix("cnt", m.expert_counts);
  v.real_matrix("gate", m.gate_mean, Real::finite_nonneg);
  v.real("eval", m.eval_loss, Real::any);
}

template <class V, class M>
void fields(V& v, M& m, Of<TurnDone>) {
  v.uint("turn", m.turn_id);
  v.uint("ndone", m.steps_done);
  v.boolean("ok", m.ok);
  v.str("why", m.reason);
  v.str("suspect", m.suspect_party);
}

template <class V, class M>
void fields(V& v, M& m, Of<ExpertLoad>) {
  v.int64("step", m.step, kAnyStep);
  v.real_matrix("lrun", m.running, Real::finite_nonneg);
  v.real_matrix("lwin", m.window, Real::finite_nonneg);
  v.uint("wst", m.window_steps);
  v.uints("alive", m.alive, 1);
}

template <class V, class M>
void fields(V& v, M& m, Of<Heartbeat>) {
  v.uint("seq", m.seq);
  v.int64("step", m.step, kAnyStep);
  v.str("state", m.state);
}

template <class V, class M>
void fields(V& v, M& m, Of<StatusRequest>) {
  v.boolean("load", m.include_load);
}

template <class V, class M>
void fields(V& v, M& m, Of<PartyStatus>) {
  v.str("pid", m.party_id);
  v.uint("idx", m.index);
  v.boolean("alive", m.alive);
  v.str("state", m.state);
  v.real("seen_ms", m.last_seen_ms_ago, Real::any);
  v.int64("ndone", m.steps_done, kAnyStep);
  v.uint("tok", m.tokens);
  v.real("loss", m.last_loss, Real::any);
  v.real("eval", m.last_eval_loss, Real::any);
  v.real("tps", m.tokens_per_s, Real::any);
  v.uint("peak", m.peak_memory_bytes);
  v.uint("mem", m.memory_budget_bytes);
  v.uint("bsent", m.bytes_sent);
  v.uint("brecv", m.bytes_received);
  v.str("ep", m.endpoint);
}

template <class V, class M>
void fields(V& v, M& m, Of<Status>) {
  v.str("run", m.run_id);
  v.str("state", m.state);
  v.int64("step", m.step, kAnyStep);
  v.int64("total", m.total_steps, kAnyStep);
  v.str("tparty", m.turn_party);
  v.real("up_s", m.uptime_s, Real::any);
  v.entries("parties", m.parties);
  v.uints("moe", m.moe_layers);
  v.uint_matrix("place", m.placement);
  v.real_matrix("lrun", m.load_running, Real::finite_nonneg);
  v.real_matrix("lwin", m.load_window, Real::finite_nonneg);
  v.int64("pstep", m.pool_step, kNoneStep);
}

template <class V, class M>
void fields(V& v, M& m, Of<Control>) {
  v.str("act", m.action);
}

template <class V, class M>
void fields(V& v, M& m, Of<ControlAck>) {
  v.boolean("ok", m.ok);
  v.str("msg", m.message);
}

template <class V, class M>
void fields(V& v, M& m, Of<CheckpointRequest>) {
  v.int64("step", m.step, kAnyStep);
}

template <class V, class M>
void fields(V& v, M& m, Of<CheckpointDone>) {
  v.int64("step", m.step, kAnyStep);
  v.boolean("ok", m.ok);
  v.str("path", m.path);
  v.str("why", m.reason);
}

template <class V, class M>
void fields(V& v, M& m, Of<SnapshotRequest>) {
  v.uint("sid", m.snapshot_id);
}

template <class V, class M>
void fields(V& v, M& m, Of<Snapshot>) {
  v.uint("sid", m.snapshot_id);
  v.int64("step", m.step, kAnyStep);
  v.strs("names", m.names);
  v.tensors("ts", m.tensors, TensorRole::parameters);
}

template <class V, class M>
void fields(V& v, M& m, Of<PoolRequest>) {
  v.int64("minstep", m.min_step, kAnyStep);
}

template <class V, class M>
void fields(V& v, M& m, Of<Pool>) {
  v.int64("step", m.step, kNoneStep);
  v.strs("names", m.names);
  v.tensors("ts", m.tensors, TensorRole::parameters);
  v.optional_uints("psteps", m.party_steps);  // 1.2
}

template <class V, class M>
void fields(V& v, M& m, Of<Stop>) {
  v.str("why", m.reason);
}

template <class V, class M>
void fields(V& v, M& m, Of<Bye>) {
  v.str("why", m.reason);
}

template <class V, class M>
void fields(V& v, M& m, Of<RoundClose>) {
  v.int64("step", m.step, kAnyStep);
}

template <class V, class M>
void fields(V& v, M& m, Of<RoundNorm>) {
  v.int64("step", m.step, kAnyStep);
  v.real("gsq", m.grad_sq, Real::nonneg);
  v.uint("nexp", m.experts);
}

template <class V, class M>
void fields(V& v, M& m, Of<RoundCommit>) {
  v.int64("step", m.step, kAnyStep);
  v.boolean("apply", m.apply);
  v.real("scale", m.scale, Real::finite_nonneg);
}

template <class V, class M>
void fields(V& v, M& m, Of<RoundCommitAck>) {
  v.int64("step", m.step, kAnyStep);
  v.uint("nexp", m.experts_stepped);
}

template <class V, class M>
void fields(V& v, M& m, Of<ErrorMsg>) {
  v.uint("code", m.code);
  v.str("why", m.reason);
  v.uint("re", m.in_reply_to);
  v.uint("rid", m.request_id);
}

template <class V, class M>
void fields(V& v, M& m, Of<TurnNotice>) {  // 1.2
  v.uint("turn", m.turn_id);
  v.uint("round", m.round);
  v.uints("pidx", m.holders);
  v.int64("sbeg", m.step_begin, kAnyStep);
  v.uint("nst", m.n_steps);
}

// ---- party <-> party expert service ----
template <class V, class M>
void fields(V& v, M& m, Of<ExpertForward>) {
  v.uint("rid", m.request_id);
  v.str("req", m.requester);
  v.int64("step", m.step, kAnyStep);
  v.uint("layer", m.layer);
  v.enumeration("mode", m.mode, uint64_t{1});
  v.tensor("ids", m.expert_ids, TensorRole::expert_ids);
  v.tensor("rows", m.rows, TensorRole::activations);
}

template <class V, class M>
void fields(V& v, M& m, Of<ExpertForwardReply>) {
  v.uint("rid", m.request_id);
  v.tensor("out", m.outputs, TensorRole::activations);
  v.optional_uints("tl", m.timeline);  // 1.1
}

template <class V, class M>
void fields(V& v, M& m, Of<ExpertBackward>) {
  v.uint("rid", m.request_id);
  v.tensor("gout", m.grad_outputs, TensorRole::activations);
}

template <class V, class M>
void fields(V& v, M& m, Of<ExpertBackwardReply>) {
  v.uint("rid", m.request_id);
  v.real("gsq", m.grad_sq_norm, Real::nonneg);
  v.tensor("gin", m.grad_inputs, TensorRole::activations);
  v.optional_uints("tl", m.timeline);  // 1.1
}

template <class V, class M>
void fields(V& v, M& m, Of<StepEnd>) {
  v.str("req", m.requester);
  v.int64("step", m.step, kAnyStep);
  v.real("clip", m.clip_scale, Real::finite);
}

template <class V, class M>
void fields(V& v, M& m, Of<StepEndAck>) {
  v.int64("step", m.step, kAnyStep);
  v.uint("nexp", m.experts_stepped);
}

template <class V, class M>
void fields(V& v, M& m, Of<StepAbort>) {
  v.str("req", m.requester);
  v.int64("step", m.step, kAnyStep);
  v.str("why", m.reason);
}

template <class V, class M>
void fields(V& v, M& m, Of<StepAbortAck>) {
  v.int64("step", m.step, kAnyStep);
}

}  // namespace pcmoe::proto
