// The remote part of a FederatedDispatcher's calls (see dispatcher.h): replies collected in the
// order they arrive from any host, staged as they come, the backward pass, and the hosts'
// timelines of each request (protocol 1.1 `tl`) for the attribution of a step's time.
#include <fmt/format.h>

#include <thread>

#include "common/error.h"
#include "common/timer.h"
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
        link_.send(call.hosts[i], call.requests[i]);
        call.sent_at[i] = SteadyClock::now();
        continue;
      }
      refused(call.hosts[i], call.request_ids[i], *err);
    }
    take(i, got.second);
    pending.erase(pending.begin() + static_cast<std::ptrdiff_t>(k));
    index.erase(index.begin() + static_cast<std::ptrdiff_t>(k));
  }
}

torch::Tensor FederatedDispatcher::wait_forward(Call& call, torch::ScalarType dtype) {
  int64_t total = 0;
  for (int64_t n : call.rows) total += n;
  ReplyStager stager(total, cfg_.d_model, call.device, dtype);
  collect(call, proto::MsgType::expert_forward_reply, stats_.forward, [&](size_t i, const proto::Message& m) {
    const auto received = SteadyClock::now();
    const auto& r = std::get<proto::ExpertForwardReply>(m);
    check_reply_shape(call.hosts[i], call.request_ids[i], r.outputs, call.rows[i], cfg_.d_model, "request");
    note_timeline(stats_.remote_forward, call, i, r.timeline, received);
    ScopedTimer timer(stats_.forward.stage_ms);
    stager.add(r.outputs, call.first[i]);  // while the next replies are still arriving
  });
  ScopedTimer timer(stats_.forward.h2d_ms);
  return stager.finish();
}

torch::Tensor FederatedDispatcher::run_backward(Call& call, const torch::Tensor& grad) {
  // All hosts' output gradients in one device-to-host copy; each request is a slice of it.
  ScopedTimer copy_timer(stats_.backward.gather_ms);
  auto host_grads = host_copy(grad, opt_.wire_dtype);
  copy_timer.stop();
  {
    ScopedTimer send_timer(stats_.backward.send_ms);
    for (size_t i = 0; i < call.hosts.size(); ++i) {
      proto::ExpertBackward req;
      req.request_id = call.request_ids[i];
      req.grad_outputs = wrap_rows(host_grads, call.first[i], call.rows[i]);
      link_.send(call.hosts[i], req);
      call.sent_at[i] = SteadyClock::now();
    }
  }
  ReplyStager stager(host_grads.rows(), cfg_.d_model, call.device, grad.scalar_type());
  collect(call, proto::MsgType::expert_backward_reply, stats_.backward,
          [&](size_t i, const proto::Message& m) {
            const auto received = SteadyClock::now();
            const auto& r = std::get<proto::ExpertBackwardReply>(m);
            check_reply_shape(call.hosts[i], call.request_ids[i], r.grad_inputs, call.rows[i], cfg_.d_model,
                              "backward");
            note_timeline(stats_.remote_backward, call, i, r.timeline, received);
            remote_grad_sq_ += r.grad_sq_norm;
            ScopedTimer timer(stats_.backward.stage_ms);
            stager.add(r.grad_inputs, call.first[i]);
          });
  ScopedTimer timer(stats_.backward.h2d_ms);
  return stager.finish();
}

}  // namespace pcmoe::party
