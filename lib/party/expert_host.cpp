// Host side of the expert protocol (see expert_host.h).
#include "party/expert_host.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "common/error.h"
#include "common/log.h"
#include "common/timer.h"
#include "model/backward_gate.h"
#include "model/compat.h"
#include "model/device_timer.h"
#include "model/tensor_io.h"
#include "model/torch_error.h"
#include "party/wire.h"
#include "proto/wire_tensor.h"

namespace pcmoe::party {
namespace {

using Clock = std::chrono::steady_clock;

proto::Message error_reply(proto::ErrorCode code, std::string reason, proto::MsgType type,
                           uint64_t request_id) {
  proto::ErrorMsg e;
  e.code = static_cast<uint16_t>(code);
  e.reason = std::move(reason);
  e.in_reply_to = static_cast<uint16_t>(type);
  e.request_id = request_id;
  return e;
}

}  // namespace

ExpertHost::ExpertHost(const ModelConfig& model, const TrainConfig& train, model::ExpertShard& shard,
                       model::AdamW& opt, std::shared_mutex& shard_mu, HostOptions options)
    : model_(model),
      train_(train),
      shard_(shard),
      opt_(opt),
      shard_mu_(shard_mu),
      opt_s_(std::move(options)) {}

void ExpertHost::set_known_parties(std::set<std::string> ids) {
  std::lock_guard<std::mutex> lock(mu_);
  known_ = std::move(ids);
}

void ExpertHost::set_lost_parties(std::set<std::string> ids) {
  std::lock_guard<std::mutex> lock(mu_);
  lost_ = std::move(ids);
}

namespace {
constexpr int kOutOfTurnWarn = 20;  // refusals of one requester's step before a warning
}

void ExpertHost::set_turn_probe(TurnProbe probe) {
  std::lock_guard<std::mutex> lock(mu_);
  turn_probe_ = std::move(probe);
}

void ExpertHost::set_party_indices(std::map<std::string, uint32_t> index_of) {
  std::lock_guard<std::mutex> lock(mu_);
  index_of_ = std::move(index_of);
}

std::string ExpertHost::turn_refusal(const std::string& requester, int64_t step) const {
  if (!turn_probe_) return "";
  const std::optional<proto::TurnNotice> t = turn_probe_();
  if (!t || t->holders.empty())
    return fmt::format("no turn is in progress (step {} of '{}')", step, requester);
  const auto it = index_of_.find(requester);
  if (it == index_of_.end() ||
      std::find(t->holders.begin(), t->holders.end(), it->second) == t->holders.end()) {
    return fmt::format("party '{}' does not hold turn {}", requester, t->turn_id);
  }
  if (step < t->step_begin || step >= t->step_begin + static_cast<int64_t>(t->n_steps)) {
    return fmt::format("step {} is not one of turn {} (steps {} to {})", step, t->turn_id, t->step_begin,
                       t->step_begin + static_cast<int64_t>(t->n_steps) - 1);
  }
  return "";
}

void ExpertHost::set_max_stash_bytes(uint64_t bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  opt_s_.max_stash_bytes = bytes;
}

HostStats ExpertHost::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void ExpertHost::stamp_replied(proto::Message& reply) {
  const auto now = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count());
  if (auto* f = std::get_if<proto::ExpertForwardReply>(&reply); f && f->timeline.size() == proto::kTlCount) {
    f->timeline[proto::kTlRepliedNs] = now;
  }
  if (auto* b = std::get_if<proto::ExpertBackwardReply>(&reply); b && b->timeline.size() == proto::kTlCount) {
    b->timeline[proto::kTlRepliedNs] = now;
  }
}

ExpertHost::Prepared ExpertHost::prepare(proto::Message request) const {
  Prepared p;
  const auto t0 = Clock::now();
  if (auto* f = std::get_if<proto::ExpertForward>(&request)) p.staged = stage(f->rows, opt_s_.device);
  if (auto* b = std::get_if<proto::ExpertBackward>(&request))
    p.staged = stage(b->grad_outputs, opt_s_.device);
  p.stage_ms = ms_since(t0);
  p.message = std::move(request);
  return p;
}

namespace {

// A request's id and the requester it names; false for a type the expert service does not take.
bool request_identity(const proto::Message& m, uint64_t& request_id, std::string& requester) {
  if (auto* f = std::get_if<proto::ExpertForward>(&m)) {
    request_id = f->request_id;
    requester = f->requester;
  } else if (auto* b = std::get_if<proto::ExpertBackward>(&m)) {
    request_id = b->request_id;
  } else if (auto* s = std::get_if<proto::StepEnd>(&m)) {
    requester = s->requester;
  } else if (auto* a = std::get_if<proto::StepAbort>(&m)) {
    requester = a->requester;
  } else {
    return false;
  }
  return true;
}

}  // namespace

std::vector<uint64_t> ExpertHost::host_timeline(std::chrono::steady_clock::time_point received,
                                                const RequestTimes& tm) {
  const auto us = [](double ms) { return static_cast<uint64_t>(std::max(0.0, ms) * 1e3); };
  return {static_cast<uint64_t>(
              std::chrono::duration_cast<std::chrono::nanoseconds>(received.time_since_epoch()).count()),
          0,
          us(tm.stage_ms),
          us(tm.h2d_ms),
          us(tm.compute_ms),
          us(tm.d2h_ms),
          us(tm.check_ms)};
}

proto::Message ExpertHost::handle(const std::string& sender, const Prepared& prepared,
                                  std::chrono::steady_clock::time_point received, const std::string& conn) {
  return complete(launch(sender, prepared, received, conn));
}

std::unique_ptr<ExpertHost::Launched> ExpertHost::launch(const std::string& sender, const Prepared& prepared,
                                                         std::chrono::steady_clock::time_point received,
                                                         const std::string& conn) {
  auto l = std::make_unique<Launched>();
  l->received = received;
  const proto::Message& request = prepared.message;
  const proto::MsgType type = proto::type_of(request);
  l->type = type;
  uint64_t request_id = 0;
  std::string requester;
  if (!request_identity(request, request_id, requester)) {
    l->reply = error_reply(
        proto::ErrorCode::unknown_type,
        fmt::format("{} is not accepted on the expert service", proto::msg_type_name(type)), type, 0);
    return l;
  }
  l->request_id = request_id;
  // Identity: the authenticated sender wins; the requester field must agree with it.
  if (!sender.empty()) {
    if (!requester.empty() && requester != sender) {
      l->reply = error_reply(
          proto::ErrorCode::unknown_party,
          fmt::format("requester '{}' does not match the authenticated sender '{}'", requester, sender), type,
          request_id);
      return l;
    }
    requester = sender;
  }
  // Where kept rows come from: the authenticated sender, else the connection, else (a forward
  // called directly) its requester field; "" for a backward called directly without either.
  const std::string origin = !sender.empty() ? sender : !conn.empty() ? "conn:" + conn : requester;
  l->origin = origin;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.requests++;
    if (std::holds_alternative<proto::ExpertBackward>(request) && requester.empty()) {
      auto it = find_entry({origin, request_id});
      if (it != stash_.end()) requester = it->second.requester;
    }
    if (!known_.empty() && !requester.empty() && !known_.count(requester)) {
      l->reply = error_reply(proto::ErrorCode::unknown_party,
                             fmt::format("party '{}' is not in the directory", requester), type, request_id);
      return l;
    }
  }
  const auto t0 = Clock::now();
  l->tm.stage_ms = prepared.stage_ms;
  try {
    Started st = model::guarded("expert computation failed", [&]() -> Started {
      if (auto* f = std::get_if<proto::ExpertForward>(&request))
        return forward(requester, origin, *f, *prepared.staged, l->tm);
      if (auto* b = std::get_if<proto::ExpertBackward>(&request))
        return backward(requester, origin, *b, *prepared.staged, l->tm);
      if (auto* s = std::get_if<proto::StepEnd>(&request)) return {step_end(requester, *s), {}};
      return {step_abort(requester, std::get<proto::StepAbort>(request)), {}};
    });
    l->reply = std::move(st.reply);
    l->finish = std::move(st.finish);
    if (l->finish) {
      std::lock_guard<std::mutex> lock(mu_);
      launched_++;
    }
  } catch (const ModelError& e) {
    l->reply = failed(*l, e);
  } catch (const std::exception& e) {
    l->reply = error_reply(proto::ErrorCode::internal, std::string("expert request failed: ") + e.what(),
                           type, request_id);
  }
  l->launch_ms = ms_since(t0);
  return l;
}

proto::Message ExpertHost::failed(const Launched& l, const ModelError& e) {
  std::lock_guard<std::mutex> lock(mu_);
  erase_entry_locked({l.origin, l.request_id});
  return error_reply(e.out_of_memory() ? proto::ErrorCode::out_of_memory : proto::ErrorCode::internal,
                     e.what(), l.type, l.request_id);
}

proto::Message ExpertHost::complete(std::unique_ptr<Launched> l) {
  const auto t0 = Clock::now();
  proto::Message reply;
  if (l->reply) {
    reply = std::move(*l->reply);
  } else {
    try {
      reply = model::guarded("expert computation failed", [&] { return l->finish(l->tm); });
    } catch (const ModelError& e) {
      reply = failed(*l, e);
    } catch (const std::exception& e) {
      reply = error_reply(proto::ErrorCode::internal, std::string("expert request failed: ") + e.what(),
                          l->type, l->request_id);
    }
    std::lock_guard<std::mutex> lock(mu_);
    launched_--;
    idle_cv_.notify_all();
  }
  const std::vector<uint64_t> timeline = host_timeline(l->received, l->tm);
  if (auto* f = std::get_if<proto::ExpertForwardReply>(&reply)) f->timeline = timeline;
  if (auto* b = std::get_if<proto::ExpertBackwardReply>(&reply)) b->timeline = timeline;
  std::lock_guard<std::mutex> lock(mu_);
  stats_.compute_ms += l->launch_ms + ms_since(t0);
  if (std::holds_alternative<proto::ErrorMsg>(reply)) stats_.errors++;
  return reply;
}

bool ExpertHost::open_step(const std::string& requester, int64_t step, std::string& why) {
  const auto now = Clock::now();
  if (!open_requester_.empty() && open_requester_ != requester) {
    const bool lost = lost_.count(open_requester_) > 0;  // it will never end its step
    const bool turn_over = !turn_refusal(open_requester_, open_step_).empty();
    if (!lost && !turn_over && now - open_touched_ < std::chrono::milliseconds(opt_s_.stale_ms)) {
      why = fmt::format("party '{}' holds an open step {}", open_requester_, open_step_);
      return false;
    }
    drop_open_step_locked(lost ? "requester lost" : turn_over ? "turn over" : "stale");
  }
  if (open_requester_ == requester && open_step_ != step) drop_open_step_locked("superseded");
  open_requester_ = requester;
  open_step_ = step;
  open_touched_ = now;
  return true;
}

void ExpertHost::drop_open_step_locked(const char* reason) {
  if (open_requester_.empty()) return;
  PCMOE_WARN("host.step_dropped")
      .kv("requester", open_requester_)
      .kv("step", open_step_)
      .kv("reason", reason)
      .kv("stashed", static_cast<int64_t>(stash_.size()));
  clear_stash_locked();
  {
    std::unique_lock<std::shared_mutex> w(shard_mu_);
    opt_.zero_grad();
  }
  open_requester_.clear();
  open_step_ = -1;
}

std::optional<proto::Message> ExpertHost::check_forward(const proto::ExpertForward& req, torch::Tensor& ids,
                                                        std::vector<int64_t>& distinct) const {
  const auto type = proto::MsgType::expert_forward;
  const int layer = static_cast<int>(req.layer);
  if (!model_.is_moe_layer(layer)) {
    return error_reply(proto::ErrorCode::bad_field, fmt::format("layer {} is not a MoE layer", layer), type,
                       req.request_id);
  }
  const int64_t rows = req.rows.shape.empty() ? 0 : req.rows.shape[0];
  if (req.rows.shape.size() != 2 || req.rows.shape[1] != model_.d_model || req.expert_ids.shape.size() != 1 ||
      req.expert_ids.shape[0] != rows) {
    return error_reply(proto::ErrorCode::bad_shape,
                       fmt::format("rows must be [R, {}] with R expert ids", model_.d_model), type,
                       req.request_id);
  }
  ids = ids_from_wire(req.expert_ids, torch::kCPU);
  if (rows > 0) {
    auto uniq = std::get<0>(torch::_unique(ids, /*sorted=*/true));
    distinct.assign(uniq.data_ptr<int64_t>(), uniq.data_ptr<int64_t>() + uniq.numel());
  }
  for (int64_t e : distinct) {
    if (e < 0 || e >= model_.n_experts || !shard_.has(layer, static_cast<int>(e))) {
      return error_reply(proto::ErrorCode::unavailable,
                         fmt::format("expert {} is not hosted by party '{}'",
                                     model::expert_name(layer, static_cast<int>(e)), opt_s_.self_id),
                         type, req.request_id);
    }
  }
  return std::nullopt;
}

std::string ExpertHost::round_refusal(int64_t step, bool& busy) const {
  busy = false;
  if (step <= last_round_ || (round_step_ >= 0 && step < round_step_)) {
    return fmt::format("round {} is over on this host", step);
  }
  if (round_step_ < 0 || step > round_step_) {
    busy = true;  // the hub's turn for it has not reached this party yet
    return fmt::format("round {} is not open on this host yet", step);
  }
  if (round_closed_) return fmt::format("round {} is closed (its gradient norm was reported)", step);
  return "";
}

std::map<ExpertHost::Key, ExpertHost::Entry>::iterator ExpertHost::find_entry(const Key& key) {
  if (!key.first.empty()) return stash_.find(key);
  auto found = stash_.end();
  for (auto it = stash_.begin(); it != stash_.end(); ++it) {
    if (it->first.second != key.second) continue;
    if (found != stash_.end()) return stash_.end();  // ambiguous without an origin
    found = it;
  }
  return found;
}

std::optional<proto::Message> ExpertHost::admit(const std::string& requester, const Key& key,
                                                const proto::ExpertForward& req, uint64_t full_bytes,
                                                uint64_t min_bytes, bool& recompute) {
  const auto type = proto::MsgType::expert_forward;
  std::lock_guard<std::mutex> lock(mu_);
  std::string why = turn_refusal(requester, req.step);
  if (!why.empty()) {
    stats_.out_of_turn++;
    // A holder's request can overtake the hub's notice (debug); refused again and again, it is not.
    if (last_out_of_turn_.first != std::make_pair(requester, req.step))
      last_out_of_turn_ = {{requester, req.step}, 0};
    const int n = ++last_out_of_turn_.second;
    if (n == 1 || n == kOutOfTurnWarn) {
      PCMOE_LOG(n == 1 ? log::Level::debug : log::Level::warn, "host.out_of_turn")
          .kv("requester", requester)
          .kv("step", req.step)
          .kv("refused", static_cast<int64_t>(n))
          .kv("reason", why);
    }
    return error_reply(proto::ErrorCode::busy, why, type, req.request_id);
  }
  if (concurrent_) {
    bool busy = false;
    why = round_refusal(req.step, busy);
    if (!why.empty()) {
      return error_reply(busy ? proto::ErrorCode::busy : proto::ErrorCode::out_of_order, why, type,
                         req.request_id);
    }
  } else if (!open_step(requester, req.step, why)) {
    return error_reply(proto::ErrorCode::busy, why, type, req.request_id);
  }
  if (stash_.count(key)) {
    return error_reply(proto::ErrorCode::out_of_order,
                       fmt::format("request id {} already in use", req.request_id), type, req.request_id);
  }
  const uint64_t cap = opt_s_.max_stash_bytes;
  recompute = false;
  if (cap > 0 && stats_.stash_bytes + full_bytes > cap) {
    if (stats_.stash_bytes + min_bytes > cap) {
      stats_.busy++;
      return error_reply(
          proto::ErrorCode::busy,
          fmt::format("rows kept for backward would exceed the memory limit ({} of {} bytes in use)",
                      stats_.stash_bytes, cap),
          type, req.request_id);
    }
    recompute = true;
  }
  return std::nullopt;
}

ExpertHost::Started ExpertHost::forward(const std::string& requester, const std::string& origin,
                                        const proto::ExpertForward& req, const Staged& staged,
                                        RequestTimes& tm) {
  const int layer = static_cast<int>(req.layer);
  torch::Tensor ids;
  std::vector<int64_t> distinct;
  if (auto bad = check_forward(req, ids, distinct)) return {*bad, {}};
  const int64_t rows = req.rows.shape[0];
  const bool train = req.mode == proto::ExpertMode::train;
  // Bytes a train request keeps until its backward: everything autograd saves, or (recompute)
  // only the fp32 input rows.
  const double e = opt_s_.bf16 ? 2.0 : 4.0;
  const uint64_t full_bytes = static_cast<uint64_t>(
      static_cast<double>(rows) * (4.0 * model_.d_model + e * (2.0 * model_.d_model + 4.0 * model_.d_ff)));
  const uint64_t min_bytes = static_cast<uint64_t>(rows) * 4 * model_.d_model;
  bool recompute = false;
  if (train) {
    if (auto refused = admit(requester, {origin, req.request_id}, req, full_bytes, min_bytes, recompute))
      return {*refused, {}};
  }
  auto dt = std::make_shared<model::DeviceTimer>(opt_s_.device);
  dt->mark();
  auto x = to_device(staged, opt_s_.device, torch::kFloat32);
  dt->mark();
  if (train && opt_s_.received_capture && req.step % opt_s_.capture_every == 0)
    capture_received(requester.empty() ? req.requester : requester, req, x, ids);
  torch::Tensor y;
  {
    std::shared_lock<std::shared_mutex> r(shard_mu_);
    model::AutocastGuard autocast(opt_s_.bf16, opt_s_.device);
    if (train && !recompute) {
      x.requires_grad_(true);
      y = shard_.run(layer, x, ids);
    } else {
      torch::NoGradGuard no_grad;
      y = shard_.run(layer, x, ids);
    }
  }
  dt->mark();
  const auto t = Clock::now();
  // Finite in the reply's dtype (fp16 can overflow): checked on the device, read with the copy
  // (fp8: from the reply's scales).
  const DType wire = req.rows.dtype;
  const torch::Tensor finite = finite_flag(y, wire);
  tm.check_ms = ms_since(t);
  const HostRows outputs = host_copy_async(y, wire);
  dt->mark();
  const Key key{origin, req.request_id};
  if (train) {  // kept now (its backward cannot come before the reply); dropped below if not finite
    Entry en;
    en.requester = requester;
    en.step = req.step;
    en.layer = layer;
    en.x = x;
    en.experts = distinct;
    en.bytes = recompute ? min_bytes : full_bytes;
    if (recompute) {
      en.ids = ids;
    } else {
      en.y = y;
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (recompute) stats_.recomputed++;
    stats_.stash_bytes += en.bytes;
    stash_.emplace(key, std::move(en));
    open_touched_ = Clock::now();
  }
  ForwardDone done{dt, finite, outputs, key, wire, rows, train};
  return {std::nullopt, [this, done](RequestTimes& tm) { return finish_forward(done, tm); }};
}

proto::Message ExpertHost::finish_forward(const ForwardDone& d, RequestTimes& tm) {
  tm.read_device(*d.timer);  // waits for the device
  std::lock_guard<std::mutex> lock(mu_);
  if (!rows_finite(d.finite, d.outputs)) {
    // Finite rows too large for the experts (or outputs beyond the rows' wire dtype): a reply the
    // requester's decoder would reject, and gradients that would poison the experts.
    if (d.train) erase_entry_locked(d.key);
    return error_reply(
        proto::ErrorCode::non_finite,
        fmt::format("the experts' outputs for these rows are not finite in {} (rows too large?)",
                    dtype_name(d.wire)),
        proto::MsgType::expert_forward, d.key.second);
  }
  stats_.rows_forward += static_cast<uint64_t>(d.rows);
  proto::ExpertForwardReply out;
  out.request_id = d.key.second;
  out.outputs = d.outputs.wrap(0, d.outputs.rows());
  return out;
}

void ExpertHost::erase_entry_locked(const Key& key) {
  auto it = find_entry(key);
  if (it != stash_.end()) take_entry_locked(it);
}

ExpertHost::Entry ExpertHost::take_entry_locked(std::map<Key, Entry>::iterator it) {
  Entry e = std::move(it->second);
  stash_.erase(it);
  stats_.stash_bytes -= std::min(stats_.stash_bytes, e.bytes);
  return e;
}

void ExpertHost::clear_stash_locked() {
  stash_.clear();
  stats_.stash_bytes = 0;
}

void ExpertHost::capture_received(const std::string& requester, const proto::ExpertForward& req,
                                  const torch::Tensor& x, const torch::Tensor& ids) const {
  CaptureRecord r;
  r.side = "received";
  r.self = opt_s_.self_id;
  r.self_index = opt_s_.self_index;
  r.peer = requester;
  r.step = req.step;
  r.layer = req.layer;
  r.rid = req.request_id;
  r.tensors.push_back(model::to_raw("rows", x.detach().to(torch::kFloat32)));
  r.tensors.push_back(model::to_raw("ids", ids.to(torch::kInt32)));
  opt_s_.received_capture->append(r);
}

ExpertHost::Started ExpertHost::backward(const std::string& requester, const std::string& origin,
                                         const proto::ExpertBackward& req, const Staged& staged,
                                         RequestTimes& tm) {
  const auto type = proto::MsgType::expert_backward;
  Entry e;
  bool concurrent = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = find_entry({origin, req.request_id});
    if (it == stash_.end() || (!requester.empty() && it->second.requester != requester)) {
      return {error_reply(proto::ErrorCode::unknown_request,
                          fmt::format("no train-mode forward with request id {} is waiting for backward",
                                      req.request_id),
                          type, req.request_id),
              {}};
    }
    concurrent = concurrent_;
    if (concurrent && (round_closed_ || it->second.step != round_step_)) {
      return {
          error_reply(proto::ErrorCode::out_of_order,
                      fmt::format("round {} is closed on this host", it->second.step), type, req.request_id),
          {}};
    }
    if (req.grad_outputs.shape != it->second.x.sizes().vec()) {
      return {error_reply(proto::ErrorCode::bad_shape,
                          "grad_outputs shape differs from the forward's outputs", type, req.request_id),
              {}};
    }
    e = take_entry_locked(it);
    open_touched_ = Clock::now();
  }
  auto dt = std::make_shared<model::DeviceTimer>(opt_s_.device);
  const DType wire = req.grad_outputs.dtype;
  torch::Tensor finite, norm;
  HostRows grads;
  {
    std::shared_lock<std::shared_mutex> r(shard_mu_);
    if (!e.y.defined()) {  // recompute mode: run the experts again, this time keeping the graph
      e.x.requires_grad_(true);
      model::AutocastGuard autocast(opt_s_.bf16, opt_s_.device);
      e.y = shard_.run(e.layer, e.x, e.ids);
    }
    dt->mark();
    auto grad = to_device(staged, opt_s_.device, e.y.scalar_type());
    dt->mark();
    model::BackwardGate::instance().run([&] { torch::autograd::backward({e.y}, {grad}); });
    std::vector<torch::Tensor> touched;
    for (int64_t id : e.experts) {
      for (auto& p : shard_.get(e.layer, static_cast<int>(id))->parameters()) touched.push_back(p);
    }
    // Concurrent rounds clip by the round's norm (round_norm): none per request.
    norm = to_host_async(concurrent ? torch::zeros({}) : model::grad_norm_tensor(touched));
    dt->mark();
    const auto t = Clock::now();
    finite = finite_flag(e.x.grad(), wire);
    tm.check_ms = ms_since(t);
    grads = host_copy_async(e.x.grad(), wire);
    dt->mark();
  }
  BackwardDone done{dt, finite, norm, grads, req.request_id, e.requester, e.step, e.x.size(0), concurrent};
  return {std::nullopt, [this, done](RequestTimes& tm) { return finish_backward(done, tm); }};
}

proto::Message ExpertHost::finish_backward(const BackwardDone& d, RequestTimes& tm) {
  tm.read_device(*d.timer);  // waits for the device
  const double n = d.norm.to(torch::kDouble).item<double>();
  const double sq = n * n;
  std::lock_guard<std::mutex> lock(mu_);
  if (!std::isfinite(sq) || !rows_finite(d.finite, d.grads)) {
    // The experts' gradients of this step overflowed: an optimizer step on them would turn the
    // shared experts into NaN for every party. The whole step is dropped, its gradients with it
    // (concurrent: the requester's step fails, so the hub drops the round's expert update).
    if (!d.concurrent && open_requester_ == d.requester && open_step_ == d.step)
      drop_open_step_locked("non-finite gradients");
    return error_reply(proto::ErrorCode::non_finite,
                       "the expert gradients of this request are not finite (rows or gradients too large?): "
                       "step dropped",
                       proto::MsgType::expert_backward, d.request_id);
  }
  stats_.rows_backward += static_cast<uint64_t>(d.rows);
  proto::ExpertBackwardReply out;
  out.request_id = d.request_id;
  out.grad_inputs = d.grads.wrap(0, d.grads.rows());
  out.grad_sq_norm = sq;
  return out;
}

proto::Message ExpertHost::step_end(const std::string& requester, const proto::StepEnd& req) {
  std::unique_lock<std::mutex> lock(mu_);
  // Every request launched before this step_end is checked first: a backward whose gradients turn
  // out not finite drops the step (complete()), so its gradients are never applied (a requester
  // that does not wait for its replies, e.g. a hostile one, must not get them applied either).
  idle_cv_.wait(lock, [this] { return launched_ == 0; });
  if (concurrent_) {  // the round's commit applies the experts' gradients, not the requester
    proto::StepEndAck ack;
    ack.step = req.step;
    return ack;
  }
  auto last = last_ended_.find(requester);
  if (open_requester_ != requester || open_step_ != req.step) {
    if (last != last_ended_.end() && last->second >= req.step) {
      proto::StepEndAck ack;  // a repeat of a step already applied: idempotent
      ack.step = req.step;
      return ack;
    }
    return error_reply(proto::ErrorCode::out_of_order,
                       fmt::format("no open step {} of party '{}' here", req.step, requester),
                       proto::MsgType::step_end, 0);
  }
  if (!stash_.empty()) {
    PCMOE_WARN("host.step_end_with_pending")
        .kv("requester", requester)
        .kv("step", req.step)
        .kv("pending", static_cast<int64_t>(stash_.size()));
    clear_stash_locked();
  }
  const double scale = std::clamp(req.clip_scale, 0.0, 1.0);
  int n = 0;
  {
    std::unique_lock<std::shared_mutex> w(shard_mu_);
    n = opt_.step(model::expert_lr_at(train_, req.step), scale);
  }
  last_ended_[requester] = req.step;
  open_requester_.clear();
  open_step_ = -1;
  stats_.steps_applied++;
  proto::StepEndAck ack;
  ack.step = req.step;
  ack.experts_stepped = static_cast<uint32_t>(n / (model_.activation == "swiglu" ? 3 : 2));
  return ack;
}

proto::Message ExpertHost::step_abort(const std::string& requester, const proto::StepAbort& req) {
  std::lock_guard<std::mutex> lock(mu_);
  if (concurrent_) {
    // Its kept rows go; gradients it already added stay until the round ends: a round with a
    // failed step is dropped by the hub (PROTOCOL.md 9.6).
    for (auto it = stash_.begin(); it != stash_.end();) {
      if (it->second.requester != requester || it->second.step != req.step) {
        ++it;
        continue;
      }
      take_entry_locked(it++);
    }
  } else if (open_requester_ == requester && open_step_ == req.step) {
    drop_open_step_locked("aborted by requester");
  }
  proto::StepAbortAck ack;
  ack.step = req.step;
  return ack;
}

// ---- concurrent rounds ----

void ExpertHost::set_concurrent(bool on) {
  std::lock_guard<std::mutex> lock(mu_);
  concurrent_ = on;
}

bool ExpertHost::concurrent() const {
  std::lock_guard<std::mutex> lock(mu_);
  return concurrent_;
}

void ExpertHost::open_round(int64_t step) {
  std::lock_guard<std::mutex> lock(mu_);
  if (step <= last_round_ || step == round_step_) return;
  if (round_step_ >= 0) {
    // A round this host never saw end (it was away for its commit): its gradients are dropped.
    PCMOE_WARN("host.round_dropped").kv("step", round_step_).kv("reason", "a later round opened");
    clear_stash_locked();
    std::unique_lock<std::shared_mutex> w(shard_mu_);
    opt_.zero_grad();
  }
  round_step_ = step;
  round_closed_ = false;
}

proto::RoundNorm ExpertHost::round_norm(int64_t step) {
  std::unique_lock<std::mutex> lock(mu_);
  idle_cv_.wait(lock, [this] { return launched_ == 0; });            // the round's backward passes, checked
  if (step > round_step_ && step > last_round_) round_step_ = step;  // not in the round itself
  if (step == round_step_) round_closed_ = true;
  proto::RoundNorm n;
  n.step = step;
  std::shared_lock<std::shared_mutex> r(shard_mu_);
  std::vector<torch::Tensor> with_grad;
  for (const auto& t : opt_.tensors()) {
    if (t.grad().defined()) with_grad.push_back(t);
  }
  n.grad_sq = model::guarded("round gradient norm", [&] { return model::grad_sq_norm(with_grad); });
  n.experts = static_cast<uint32_t>(with_grad.size() / (model_.activation == "swiglu" ? 3 : 2));
  return n;
}

std::optional<proto::Message> ExpertHost::on_round_message(const proto::Message& m) {
  if (const auto* t = std::get_if<proto::Turn>(&m)) {
    open_round(t->step_begin);
    return std::nullopt;
  }
  if (const auto* c = std::get_if<proto::RoundClose>(&m)) return proto::Message{round_norm(c->step)};
  if (const auto* c = std::get_if<proto::RoundCommit>(&m)) return proto::Message{round_commit(*c)};
  return std::nullopt;
}

proto::RoundCommitAck ExpertHost::round_commit(const proto::RoundCommit& c) {
  std::lock_guard<std::mutex> lock(mu_);
  proto::RoundCommitAck ack;
  ack.step = c.step;
  if (c.step <= last_round_) return ack;  // a repeat: applied or dropped already
  if (!stash_.empty()) {
    PCMOE_DEBUG("host.round_rows_dropped").kv("step", c.step).kv("kept", static_cast<int64_t>(stash_.size()));
    clear_stash_locked();
  }
  const double scale = std::isfinite(c.scale) ? std::clamp(c.scale, 0.0, 1.0) : 0.0;
  int n = 0;
  {
    std::unique_lock<std::shared_mutex> w(shard_mu_);
    if (c.apply && scale > 0) {
      n = model::guarded("round update",
                         [&] { return opt_.step(model::expert_lr_at(train_, c.step), scale); });
    } else {
      opt_.zero_grad();
    }
  }
  if (c.apply) stats_.steps_applied++;
  PCMOE_DEBUG("host.round_commit")
      .kv("step", c.step)
      .kv("apply", c.apply)
      .kv("params", static_cast<int64_t>(n));
  last_round_ = c.step;
  round_step_ = -1;
  round_closed_ = false;
  ack.experts_stepped = static_cast<uint32_t>(n / (model_.activation == "swiglu" ? 3 : 2));
  return ack;
}

}  // namespace pcmoe::party
