// The remote part of a FederatedDispatcher's calls (see dispatcher.h): replies collected in the
// order they arrive from any host, staged as they come, the backward pass, and the hosts'
// timelines of each request (protocol 1.1 `tl`) for the attribution of a step's time.
#include <fmt/format.h>

#include <thread>

#include "common/error.h"
#include "common/timer.h"
#include "common/trace.h"
#include "party/dispatcher.h"
#include "party/wire.h"
#include "proto/wire_tensor.h"

namespace pcmoe::party {
namespace {

int64_t ns_of(SteadyClock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

void check_reply_shape(uint32_t host, uint64_t request_id, const proto::WireTensor& t, int64_t rows,
                       int64_t d, const char* what) {
  if (t.shape != std::vector<int64_t>{rows, d}) {
    throw ProtocolError(fmt::format("host party {} answered {} {} with {} (expected [{}, {}])", host, what,
                                    request_id, proto::describe_tensor(t), rows, d));
  }
}

}  // namespace

void FederatedDispatcher::arm(const std::shared_ptr<Call>& call, size_t i, proto::MsgType expect) {
  auto arrival = call->arrival[i];
  auto stager = call->stager;
  const int64_t first = call->first[i], rows = call->rows[i], width = cfg_.d_model;
  const uint64_t rid = call->request_ids[i];
  const char kind = expect == proto::MsgType::expert_forward_reply ? 'f' : 'b';
  link_.set_sink({call->hosts[i], expect, call->request_ids[i]}, [=](const proto::Message& m) {
    const auto t0 = SteadyClock::now();
    arrival->received_ns = ns_of(t0);
    const proto::WireTensor* t = nullptr;
    if (auto* f = std::get_if<proto::ExpertForwardReply>(&m)) t = &f->outputs;
    if (auto* b = std::get_if<proto::ExpertBackwardReply>(&m)) t = &b->grad_inputs;
    if (t == nullptr || t->shape != std::vector<int64_t>{rows, width})
      return;  // the requester's thread says why
    stager->add(*t, first);
    const auto t1 = SteadyClock::now();
    arrival->stage_ns = ns_of(t1) - ns_of(t0);
    arrival->staged = true;
    trace::mark("s", rid, kind, ns_of(t1));
  });
}

void FederatedDispatcher::note_timeline(RemoteTimes& rt, const Call& call, size_t i,
                                        const std::vector<uint64_t>& tl, SteadyClock::time_point received) {
  if (tl.size() != proto::kTlCount) return;
  rt.requests++;
  const double stage = tl[proto::kTlStageUs] / 1e3, h2d = tl[proto::kTlH2dUs] / 1e3;
  const double compute = tl[proto::kTlComputeUs] / 1e3, d2h = tl[proto::kTlD2hUs] / 1e3;
  const double check = tl[proto::kTlCheckUs] / 1e3;
  rt.host_stage_ms += stage;
  rt.host_h2d_ms += h2d;
  rt.host_compute_ms += compute;
  rt.host_d2h_ms += d2h;
  rt.host_check_ms += check;
  const auto recv_ns = static_cast<int64_t>(tl[proto::kTlReceivedNs]);
  const auto reply_ns = static_cast<int64_t>(tl[proto::kTlRepliedNs]);
  const double host_ms = (reply_ns - recv_ns) / 1e6;
  if (reply_ns >= recv_ns) rt.host_other_ms += std::max(0.0, host_ms - stage - h2d - compute - d2h - check);
  // The same machine's steady clock: the host's stamps fall between our send and our receipt.
  const int64_t sent = ns_of(call.sent_at[i]), got = ns_of(received);
  if (recv_ns >= sent && reply_ns >= recv_ns && got >= reply_ns) {
    rt.same_clock++;
    rt.out_ms += (recv_ns - sent) / 1e6;
    rt.back_ms += (got - reply_ns) / 1e6;
  }
}

void FederatedDispatcher::collect(Call& call, proto::MsgType expect, PhaseTimes& phase,
                                  const std::function<void(size_t, const proto::Message&)>& take) {
  std::vector<Expected> pending;
  std::vector<size_t> index;
  for (size_t i = 0; i < call.hosts.size(); ++i) {
    pending.push_back({call.hosts[i], expect, call.request_ids[i]});
    index.push_back(i);
  }
  std::vector<int> backoff_ms(call.hosts.size(), 20);
  const auto t0 = SteadyClock::now();
  const char kind = expect == proto::MsgType::expert_forward_reply ? 'f' : 'b';
  trace::mark("L0", 0, kind, ns_of(t0), call.layer);
  while (!pending.empty()) {
    std::pair<size_t, proto::Message> got;
    {
      ScopedTimer timer(phase.wait_ms);
      got = link_.wait_any(pending);
    }
    const size_t k = got.first, i = index[k];
    if (auto* err = std::get_if<proto::ErrorMsg>(&got.second)) {
      // A host short of memory answers `busy`: ask again with back-off (its stash drains as other
      // requests' backward passes arrive), up to busy_retry_ms.
      if (expect == proto::MsgType::expert_forward_reply &&
          err->code == static_cast<uint16_t>(proto::ErrorCode::busy) && ms_since(t0) <= opt_.busy_retry_ms) {
        stats_.busy_retries++;
        std::this_thread::sleep_for(std::chrono::milliseconds(backoff_ms[i]));
        backoff_ms[i] = std::min(backoff_ms[i] * 2, 1000);
        arm(call.shared_from_this(), i, expect);
        link_.send_on(call.hosts[i], call.lanes[i], call.requests[i]);
        call.sent_at[i] = SteadyClock::now();
        continue;
      }
      refused(call.hosts[i], call.request_ids[i], *err);
    }
    take(i, got.second);
    trace::mark("t", call.request_ids[i], kind, trace::now_ns(), call.hosts[i]);
    pending.erase(pending.begin() + static_cast<std::ptrdiff_t>(k));
    index.erase(index.begin() + static_cast<std::ptrdiff_t>(k));
  }
  trace::mark("L1", 0, kind, trace::now_ns(), call.layer);
}

void FederatedDispatcher::take_reply(Call& call, size_t i, const proto::WireTensor& t,
                                     const std::vector<uint64_t>& timeline, PhaseTimes& phase,
                                     RemoteTimes& rt, const char* what) {
  check_reply_shape(call.hosts[i], call.request_ids[i], t, call.rows[i], cfg_.d_model, what);
  Arrival& a = *call.arrival[i];
  const auto received = a.received_ns
                            ? SteadyClock::time_point(std::chrono::nanoseconds(a.received_ns.load()))
                            : SteadyClock::now();
  note_timeline(rt, call, i, timeline, received);
  if (a.staged) {
    rt.requester_stage_ms += a.stage_ns / 1e6;  // staged on the link's thread as it arrived
    return;
  }
  ScopedTimer timer(phase.stage_ms);
  call.stager->add(t, call.first[i]);
}

torch::Tensor FederatedDispatcher::wait_forward(Call& call, torch::ScalarType dtype) {
  collect(call, proto::MsgType::expert_forward_reply, stats_.forward, [&](size_t i, const proto::Message& m) {
    const auto& r = std::get<proto::ExpertForwardReply>(m);
    take_reply(call, i, r.outputs, r.timeline, stats_.forward, stats_.remote_forward, "request");
  });
  ScopedTimer timer(stats_.forward.h2d_ms);
  return call.stager->finish();
}

torch::Tensor FederatedDispatcher::run_backward(Call& call, const torch::Tensor& grad) {
  // All hosts' output gradients in one device-to-host copy; each request is a slice of it.
  ScopedTimer copy_timer(stats_.backward.gather_ms);
  auto host_grads = host_copy(grad, opt_.wire_dtype);
  copy_timer.stop();
  call.stager = std::make_shared<ReplyStager>(host_grads.rows(), cfg_.d_model, call.device,
                                              grad.scalar_type(), opt_.wire_dtype);
  {
    ScopedTimer send_timer(stats_.backward.send_ms);
    for (size_t i = 0; i < call.hosts.size(); ++i) {
      proto::ExpertBackward req;
      req.request_id = call.request_ids[i];
      req.grad_outputs = wrap_rows(host_grads, call.first[i], call.rows[i]);
      call.arrival[i] = std::make_shared<Arrival>();
      arm(call.shared_from_this(), i, proto::MsgType::expert_backward_reply);
      link_.send_on(call.hosts[i], call.lanes[i], req);
      call.sent_at[i] = SteadyClock::now();
      trace::mark("q", req.request_id, 'b', ns_of(call.sent_at[i]), call.hosts[i], call.layer);
    }
  }
  // An expert's own requests (plan_routes): the norm of the one its host handled last counts, by the
  // host's receipt stamps (`tl`, one clock per host); without them, the last one sent (they are
  // sent in index order).
  struct Pick {
    uint64_t received_ns = 0;
    size_t last_index = 0;
    double latest = 0, last_sent = 0;
    bool stamped = true;
  };
  std::map<std::pair<uint32_t, int>, Pick> groups;
  collect(
      call, proto::MsgType::expert_backward_reply, stats_.backward, [&](size_t i, const proto::Message& m) {
        const auto& r = std::get<proto::ExpertBackwardReply>(m);
        take_reply(call, i, r.grad_inputs, r.timeline, stats_.backward, stats_.remote_backward, "backward");
        if (call.norm_group[i] < 0) {
          remote_grad_sq_ += r.grad_sq_norm;
          return;
        }
        Pick& p = groups[{call.hosts[i], call.norm_group[i]}];
        if (i >= p.last_index) {
          p.last_index = i;
          p.last_sent = r.grad_sq_norm;
        }
        if (r.timeline.size() != proto::kTlCount || r.timeline[proto::kTlReceivedNs] == 0) {
          p.stamped = false;
        } else if (r.timeline[proto::kTlReceivedNs] >= p.received_ns) {
          p.received_ns = r.timeline[proto::kTlReceivedNs];
          p.latest = r.grad_sq_norm;
        }
      });
  for (const auto& [key, p] : groups) remote_grad_sq_ += p.stamped ? p.latest : p.last_sent;
  ScopedTimer timer(stats_.backward.h2d_ms);
  return call.stager->finish();
}

}  // namespace pcmoe::party
