// Requester side of remote expert calls (see dispatcher.h).
#include "party/dispatcher.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "common/error.h"
#include "common/log.h"
#include "common/timer.h"
#include "common/trace.h"
#include "model/backward_gate.h"
#include "model/compat.h"
#include "model/privacy.h"
#include "model/tensor_io.h"
#include "party/wire.h"
#include "proto/describe.h"
#include "proto/wire_tensor.h"

namespace pcmoe::party {
namespace {

using Clock = std::chrono::steady_clock;

// Autograd node of one MoE layer's remote rows (all hosts together).
class RemoteCall : public torch::autograd::Function<RemoteCall> {
 public:
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, torch::Tensor x,
                                                int64_t dispatcher_ptr, int64_t call_ptr) {
    auto* d = reinterpret_cast<FederatedDispatcher*>(dispatcher_ptr);
    auto* call = reinterpret_cast<FederatedDispatcher::Call*>(call_ptr);
    ctx->saved_data["d"] = dispatcher_ptr;
    ctx->saved_data["c"] = call_ptr;
    return {d->wait_forward(*call, x.scalar_type())};
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto* d = reinterpret_cast<FederatedDispatcher*>(ctx->saved_data["d"].toInt());
    auto* call = reinterpret_cast<FederatedDispatcher::Call*>(ctx->saved_data["c"].toInt());
    model::BackwardGate::ServingScope serving;  // on CUDA, the device's autograd thread waits here
    return {d->run_backward(*call, grads[0]), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

// ---- Placement ----
Placement Placement::round_robin(const ModelConfig& cfg, uint32_t n_parties, uint32_t self) {
  Placement p;
  p.moe_layers = cfg.moe_layer_indices();
  p.self = self;
  p.n_parties = n_parties;
  for (size_t i = 0; i < p.moe_layers.size(); ++i) {
    std::vector<uint32_t> row;
    for (int e = 0; e < cfg.n_experts; ++e) row.push_back(static_cast<uint32_t>(e) % n_parties);
    p.host.push_back(row);
  }
  return p;
}

uint32_t Placement::host_of(int layer, int expert) const {
  auto it = std::find(moe_layers.begin(), moe_layers.end(), layer);
  PCMOE_CHECK_T(ModelError, it != moe_layers.end(), "layer {} is not a MoE layer", layer);
  const auto& row = host[static_cast<size_t>(it - moe_layers.begin())];
  PCMOE_CHECK_T(ModelError, expert >= 0 && static_cast<size_t>(expert) < row.size(), "expert {} out of range",
                expert);
  return row[static_cast<size_t>(expert)];
}

// ---- FederatedDispatcher ----
FederatedDispatcher::FederatedDispatcher(const ModelConfig& cfg, model::ExpertShard& local,
                                         Placement placement, ExpertLink& link, DispatchOptions options)
    : cfg_(cfg),
      local_(local),
      placement_(std::move(placement)),
      link_(link),
      opt_(std::move(options)),
      rng_(opt_.shuffle_seed),
      noise_gen_(model::make_cpu_generator(mix_seed(opt_.shuffle_seed, 0x6e6f697365ULL))),
      alive_(placement_.n_parties, true) {
  set_alive(alive_);
}

FederatedDispatcher::~FederatedDispatcher() = default;

void FederatedDispatcher::set_alive(const std::vector<bool>& alive) {
  alive_ = alive;
  alive_.resize(placement_.n_parties, true);
  masks_.clear();
  for (size_t i = 0; i < placement_.moe_layers.size(); ++i) {
    const int layer = placement_.moe_layers[i];
    const bool local_only = std::find(opt_.local_only_layers.begin(), opt_.local_only_layers.end(), layer) !=
                            opt_.local_only_layers.end();
    std::vector<uint8_t> m(static_cast<size_t>(cfg_.n_experts));
    bool all = true;
    for (int e = 0; e < cfg_.n_experts; ++e) {
      uint32_t h = placement_.host[i][static_cast<size_t>(e)];
      bool ok = local_only ? h == placement_.self : (h == placement_.self || alive_[h]);
      m[static_cast<size_t>(e)] = ok ? 1 : 0;
      all = all && ok;
    }
    if (all) {
      masks_.push_back(torch::Tensor());
    } else {
      masks_.push_back(
          torch::tensor(std::vector<int64_t>(m.begin(), m.end())).to(torch::kBool).to(opt_.device));
    }
  }
}

torch::Tensor FederatedDispatcher::available_mask(int layer) {
  auto it = std::find(placement_.moe_layers.begin(), placement_.moe_layers.end(), layer);
  if (it == placement_.moe_layers.end()) return {};
  return masks_[static_cast<size_t>(it - placement_.moe_layers.begin())];
}

void FederatedDispatcher::begin_step(int64_t step) {
  link_.clear_sinks();  // those of an abandoned step
  step_ = step;
  trace::mark("S", 0, '-', trace::now_ns(), step);
  hosts_called_.clear();
  remote_grad_sq_ = 0;
  calls_.clear();
}

proto::Message FederatedDispatcher::timed_wait(PhaseTimes& phase, uint32_t host, proto::MsgType expect,
                                               uint64_t request_id) {
  ScopedTimer timer(phase.wait_ms);
  return link_.wait(host, expect, request_id);
}

void FederatedDispatcher::refused(uint32_t host, uint64_t request_id, const proto::ErrorMsg& err) {
  if (err.code == static_cast<uint16_t>(proto::ErrorCode::busy)) {
    // Still busy after every retry: short of memory, or kept from this step by another requester.
    // The host itself did not fail, so the step fails without naming it (PROTOCOL.md 9.4).
    throw TransportError(
        fmt::format("host party {} stayed busy for request {}: {}", host, request_id, err.reason));
  }
  throw HostError(host, fmt::format("host party {} refused request {}: {} ({})", host, request_id, err.reason,
                                    proto::error_code_name(static_cast<proto::ErrorCode>(err.code))));
}

// Splits the expert-sorted rows into this party's rows (still sorted by expert) and per-host
// requests, on the CPU: `counts` says which expert each sorted row belongs to, so the expert ids
// that travel need no device round trip. A host's rows of this layer go in requests of about
// max_request_rows rows (the host computes the first while the next are on the wire, and its
// replies travel while it computes the rest): experts in id order share a request while they fit;
// an expert with more rows than that gets requests of its own, of at most max_request_rows rows.
// A host reports the squared gradient norm of the experts a request touched as accumulated after
// it (PROTOCOL.md, `gsq`), so of an expert's own requests only the norm of the one the host handled
// last counts (it includes the others'): run_backward picks it by the hosts' receipt stamps.
// send_requests spreads a host's requests over the link's connections (lanes) round-robin.
FederatedDispatcher::RoutePlan FederatedDispatcher::plan_routes(int layer, int64_t n_rows,
                                                                const std::vector<int64_t>& counts) const {
  RoutePlan plan;
  plan.local_counts.assign(counts.size(), 0);
  plan.expert_of.reserve(static_cast<size_t>(n_rows));
  const auto limit = static_cast<int64_t>(opt_.max_request_rows);
  int64_t offset = 0;
  for (int e = 0; e < cfg_.n_experts; ++e) {
    const int64_t n = counts[static_cast<size_t>(e)];
    if (n > 0) {
      const uint32_t h = placement_.host_of(layer, e);
      if (h == placement_.self) {
        plan.local_counts[static_cast<size_t>(e)] = n;
        for (int64_t r = offset; r < offset + n; ++r) plan.local_rows.push_back(r);
      } else {
        auto& reqs = plan.remote[h];
        if (limit > 0 && n > limit) {  // requests of its own; one of their norms counts
          for (int64_t r0 = offset; r0 < offset + n; r0 += limit) {
            RouteRequest q;
            for (int64_t r = r0; r < std::min(r0 + limit, offset + n); ++r) q.rows.push_back(r);
            q.norm_group = e;
            reqs.push_back(std::move(q));
          }
        } else {
          // A fresh request after an expert's own ones, or when this expert would overfill it.
          if (reqs.empty() || reqs.back().norm_group >= 0 ||
              (limit > 0 && static_cast<int64_t>(reqs.back().rows.size()) + n > limit))
            reqs.emplace_back();
          for (int64_t r = offset; r < offset + n; ++r) reqs.back().rows.push_back(r);
        }
      }
      plan.expert_of.insert(plan.expert_of.end(), static_cast<size_t>(n), e);
    }
    offset += n;
  }
  PCMOE_CHECK_T(ModelError, offset == n_rows, "counts sum to {}, but there are {} rows", offset, n_rows);
  return plan;
}

// Every remote row in one gather and one device-to-host copy (privately shuffled, optionally
// noised); each request is a slice of that buffer. Returns the gathered rows (autograd's input).
torch::Tensor FederatedDispatcher::send_requests(int layer, bool train, const torch::Tensor& x_sorted,
                                                 RoutePlan& plan, const std::shared_ptr<Call>& cp) {
  Call& call = *cp;
  std::vector<int64_t> all_rows;
  for (auto& [host, reqs] : plan.remote) {
    for (auto& q : reqs) {
      rng_.shuffle(q.rows);  // private permutation: no order information leaves the party
      all_rows.insert(all_rows.end(), q.rows.begin(), q.rows.end());
    }
  }
  ScopedTimer timer(stats_.forward.gather_ms);
  plan.remote_idx = model::upload_indices(all_rows, x_sorted.device());
  // Clipped inside autograd (the requester's gradient flows through the scaling); the noise is
  // added to what leaves only (its gradient is the identity, as for every remote row).
  torch::Tensor x_remote = model::clip_rows(x_sorted.index_select(0, plan.remote_idx), opt_.row_clip);
  auto x_out = model::add_row_noise(x_remote.detach(), opt_.row_clip, opt_.row_noise_std, noise_gen_);
  auto host_rows = host_copy(x_out, opt_.wire_dtype);
  timer.stop();
  call.stager = std::make_shared<ReplyStager>(host_rows.rows(), cfg_.d_model, call.device,
                                              x_sorted.scalar_type(), opt_.wire_dtype);
  ScopedTimer send_timer(stats_.forward.send_ms);
  int64_t first = 0;
  for (auto& [host, reqs] : plan.remote) {
    uint32_t lane = 0;  // round-robin over the link's connections to the host
    for (const auto& q : reqs) {
      const auto& rows = q.rows;
      const auto n = static_cast<int64_t>(rows.size());
      auto ids = torch::empty({n}, torch::kInt32);
      auto* idp = ids.data_ptr<int32_t>();
      for (int64_t i = 0; i < n; ++i)
        idp[i] = plan.expert_of[static_cast<size_t>(rows[static_cast<size_t>(i)])];
      proto::ExpertForward req;
      req.request_id = next_request_++;
      req.requester = opt_.self_id;
      req.step = step_;
      req.layer = static_cast<uint32_t>(layer);
      req.mode = train ? proto::ExpertMode::train : proto::ExpertMode::eval;
      req.expert_ids = ids_to_wire(ids, cfg_.n_experts);
      req.rows = wrap_rows(host_rows, first, n);
      call.requests.push_back(req);
      call.hosts.push_back(host);
      call.request_ids.push_back(req.request_id);
      call.rows.push_back(n);
      call.first.push_back(first);
      call.norm_group.push_back(q.norm_group);
      call.lanes.push_back(lane);
      call.arrival.push_back(std::make_shared<Arrival>());
      arm(cp, call.hosts.size() - 1, proto::MsgType::expert_forward_reply);
      if (capturing(train)) capture_sent(host, layer, req.request_id, rows);
      link_.send_on(host, lane++, req);
      call.sent_at.push_back(SteadyClock::now());
      trace::mark("q", req.request_id, 'f', trace::now_ns(), host, layer);
      first += n;
      stats_.requests++;
      stats_.rows_sent += static_cast<uint64_t>(n);
    }
    if (train) hosts_called_.insert(host);
  }
  return x_remote;
}

void FederatedDispatcher::note_inputs(const torch::Tensor& inputs) {
  audit_positions_.clear();
  if (opt_.sent_capture && torch::GradMode::is_enabled() && step_ % opt_.capture_every == 0)
    audit_inputs_ = inputs.reshape({-1}).to(torch::kCPU, torch::kLong).contiguous();
  else
    audit_inputs_ = torch::Tensor();
}

void FederatedDispatcher::note_rows(int layer, const torch::Tensor& positions) {
  if (audit_inputs_.defined()) audit_positions_[layer] = positions.to(torch::kCPU, torch::kLong).contiguous();
}

void FederatedDispatcher::capture_sent(uint32_t host, int layer, uint64_t rid,
                                       const std::vector<int64_t>& rows) {
  auto pos = audit_positions_.find(layer);
  if (!audit_inputs_.defined() || pos == audit_positions_.end()) return;
  auto index = torch::tensor(rows, torch::kLong);
  auto tokens = audit_inputs_.index_select(0, pos->second.index_select(0, index)).to(torch::kInt32);
  CaptureRecord r;
  r.side = "sent";
  r.self = opt_.self_id;
  r.self_index = placement_.self;
  r.peer = std::to_string(host);
  r.step = step_;
  r.layer = layer;
  r.rid = rid;
  r.tensors.push_back(model::to_raw("tokens", tokens));
  opt_.sent_capture->append(r);
}

torch::Tensor FederatedDispatcher::dispatch(int layer, const torch::Tensor& x_sorted,
                                            const torch::Tensor& /*expert_sorted*/,
                                            const std::vector<int64_t>& counts) {
  const bool train = torch::GradMode::is_enabled();
  RoutePlan plan = plan_routes(layer, x_sorted.size(0), counts);
  // All requests are in flight before the local experts compute.
  auto call = std::make_shared<Call>();
  call->layer = layer;
  call->device = x_sorted.device();
  torch::Tensor x_remote;
  if (!plan.remote.empty()) x_remote = send_requests(layer, train, x_sorted, plan, call);

  std::vector<torch::Tensor> pieces;
  std::vector<torch::Tensor> piece_idx;
  if (!plan.local_rows.empty()) {
    // All local experts at once (grouped GEMM on CUDA), while the remote requests are in flight.
    auto idx = model::upload_indices(plan.local_rows, x_sorted.device());
    pieces.push_back(local_.run_sorted(layer, x_sorted.index_select(0, idx), plan.local_counts));
    piece_idx.push_back(idx);
    stats_.rows_local += plan.local_rows.size();
  }
  if (!call->hosts.empty()) {
    torch::Tensor y_remote;
    if (train) {
      calls_.push_back(call);
      y_remote = RemoteCall::apply(x_remote, reinterpret_cast<int64_t>(this),
                                   reinterpret_cast<int64_t>(call.get()))[0];
    } else {
      y_remote = wait_forward(*call, x_sorted.scalar_type());
    }
    pieces.push_back(y_remote);
    piece_idx.push_back(plan.remote_idx);
  }
  if (pieces.empty()) return torch::zeros({0, x_sorted.size(1)}, x_sorted.options());
  for (auto& p : pieces) p = p.to(x_sorted.scalar_type());  // local bf16 (grouped GEMM) vs remote
  auto y_cat = pieces.size() == 1 ? pieces[0] : torch::cat(pieces, 0);
  auto idx_cat = piece_idx.size() == 1 ? piece_idx[0] : torch::cat(piece_idx, 0);
  // Un-permute: row idx_cat[j] of the sorted order is y_cat[j].
  auto inverse = torch::empty_like(idx_cat);
  inverse.index_put_({idx_cat}, torch::arange(idx_cat.size(0), idx_cat.options()));
  return y_cat.index_select(0, inverse);
}

void FederatedDispatcher::commit(int64_t step, double clip_scale) {
  if (concurrent_) return;  // the hub's round commit applies the hosts' part
  proto::StepEnd se;
  se.requester = opt_.self_id;
  se.step = step;
  se.clip_scale = clip_scale;
  for (uint32_t h : hosts_called_) link_.send(h, se);
  for (uint32_t h : hosts_called_) {
    auto reply = timed_wait(stats_.commit, h, proto::MsgType::step_end_ack, static_cast<uint64_t>(step));
    if (auto* err = std::get_if<proto::ErrorMsg>(&reply)) {
      throw TransportError(fmt::format("host party {} refused step_end {}: {}", h, step, err->reason));
    }
  }
}

void FederatedDispatcher::abort(int64_t step, const std::string& why) {
  PCMOE_WARN("party.step_aborted").kv("step", step).kv("reason", why);
  proto::StepAbort a;
  a.requester = opt_.self_id;
  a.step = step;
  a.reason = why;
  for (uint32_t h : hosts_called_) {
    try {
      link_.send(h, a);
      timed_wait(stats_.commit, h, proto::MsgType::step_abort_ack, static_cast<uint64_t>(step));
    } catch (const Error& e) {
      PCMOE_WARN("party.abort_unacknowledged").kv("host", static_cast<int64_t>(h)).kv("error", e.what());
    }
  }
}

}  // namespace pcmoe::party
