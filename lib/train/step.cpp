// One training step for every trainer (see step.h).
#include "train/step.h"

#include <fmt/format.h>

#include <cmath>
#include <mutex>

#include "common/error.h"
#include "common/timer.h"
#include "model/backward_gate.h"
#include "model/compat.h"
#include "model/torch_error.h"
#include "train/evaluate.h"

namespace pcmoe::train {
namespace {

std::vector<torch::Tensor> local_params(const StepModel& m) {
  std::vector<torch::Tensor> all = m.backbone_opt->tensors();
  if (m.experts_opt != nullptr) {
    for (auto& t : m.experts_opt->tensors()) all.push_back(t);
  }
  return all;
}

void zero_local_grads(const StepModel& m) {
  m.backbone_opt->zero_grad();
  if (m.experts_opt == nullptr) return;
  std::unique_lock<std::shared_mutex> write;
  if (m.experts_mu != nullptr) write = std::unique_lock<std::shared_mutex>(*m.experts_mu);
  m.experts_opt->zero_grad();
}

// Forward and backward (the experts' lock held shared when there is one). Returns the local
// squared gradient norm, or (sync_free) leaves the norm on the device in `norm`.
double forward_backward(const StepModel& m, const torch::Tensor& tokens, bool time_phases, bool sync_free,
                        model::ForwardResult& out, torch::Tensor& norm, StepResult& r) {
  return model::guarded("training step", [&] {
    std::shared_lock<std::shared_mutex> read;
    if (m.experts_mu != nullptr) read = std::shared_lock<std::shared_mutex>(*m.experts_mu);
    auto t = SteadyClock::now();
    {
      model::AutocastGuard autocast(m.bf16, m.device);
      out = (*m.backbone)->forward(tokens, *m.experts);
    }
    if (time_phases) {
      (void)out.ce_loss.item<double>();  // ends the forward phase on the device too
      r.forward_ms = ms_since(t);
      t = SteadyClock::now();
    }
    {
      model::BackwardGate::TrainerScope gate;  // hosts' backward passes meanwhile: backward_gate.h
      out.loss.backward();
    }
    double sq = 0;
    if (sync_free) {
      norm = model::grad_norm_tensor(local_params(m));
    } else {
      sq = model::grad_sq_norm(m.backbone_opt->tensors());
      if (m.experts_opt != nullptr) sq += model::grad_sq_norm(m.experts_opt->tensors());
    }
    if (time_phases) r.backward_ms = ms_since(t);
    return sq;
  });
}

void update(const StepModel& m, double lr, double expert_lr, double scale, const torch::Tensor& scale_t) {
  model::guarded("optimizer step", [&] {
    if (scale_t.defined()) {
      m.backbone_opt->step(lr, scale_t);
    } else {
      m.backbone_opt->step(lr, scale);
    }
    if (m.experts_opt == nullptr) return;
    std::unique_lock<std::shared_mutex> write;
    if (m.experts_mu != nullptr) write = std::unique_lock<std::shared_mutex>(*m.experts_mu);
    if (scale_t.defined()) {
      m.experts_opt->step(expert_lr, scale_t);
    } else {
      m.experts_opt->step(expert_lr, scale);
    }
  });
}

}  // namespace

StepResult train_step(const StepModel& m, const torch::Tensor& tokens, int64_t step, const TrainConfig& cfg,
                      const StepOptions& options, StepHooks* hooks) {
  PCMOE_CHECK_T(ModelError, m.backbone && m.experts && m.backbone_opt, "train_step: incomplete StepModel");
  const auto t0 = SteadyClock::now();
  const bool sync_free = options.sync_free && hooks == nullptr && m.device.is_cuda();
  StepResult r;
  r.step = step;
  r.lr = model::lr_at(cfg, step);
  model::ForwardResult out;
  torch::Tensor norm_t;
  SteadyClock::time_point t_update;
  try {
    double sq = forward_backward(m, tokens, options.time_phases, sync_free, out, norm_t, r);
    t_update = SteadyClock::now();
    if (!sync_free) {
      if (hooks != nullptr) sq += hooks->remote_grad_sq();
      r.loss = model::guarded("training step", [&] { return out.ce_loss.item<double>(); });
      if (!std::isfinite(r.loss) || !std::isfinite(sq)) {
        // Nothing has been applied anywhere yet: abort and let the caller report the reason.
        throw ModelError(
            fmt::format("non-finite training loss {} or gradient norm at step {}", r.loss, step));
      }
      r.grad_norm = std::sqrt(sq);
      r.clip_scale = model::clip_scale(r.grad_norm, cfg.grad_clip);
      // The hosts apply their part first; only when all acknowledged does this process update
      // its own parameters, so a failed step changes nothing here.
      if (hooks != nullptr) hooks->commit(step, r.clip_scale);
    }
  } catch (const Error& e) {
    if (hooks != nullptr) hooks->abort(step, e.what());
    zero_local_grads(m);
    throw;
  }
  if (sync_free) {
    // No host sync between backward and the optimizer: the clip scale stays on the device.
    update(m, r.lr, model::expert_lr_at(cfg, step), 1.0, model::clip_scale_tensor(norm_t, cfg.grad_clip));
    r.loss = out.ce_loss.item<double>();
    r.grad_norm = norm_t.item<double>();
    r.clip_scale = model::clip_scale(r.grad_norm, cfg.grad_clip);
    PCMOE_CHECK_T(ModelError, std::isfinite(r.loss), "training loss became {} at step {}", r.loss, step);
  } else {
    update(m, r.lr, model::expert_lr_at(cfg, step), r.clip_scale, torch::Tensor());
  }
  r.aux_loss = out.aux_loss.item<double>();
  r.tokens = out.tokens;
  r.stats = std::move(out.stats);
  r.update_ms = ms_since(t_update);
  r.step_ms = ms_since(t0);
  return r;
}

StepResult train_step(const StepModel& m, data::BatchLoader& loader, int64_t step, const TrainConfig& cfg,
                      const StepOptions& options, StepHooks* hooks) {
  const auto t0 = SteadyClock::now();
  const torch::Tensor tokens = batch_tensor(loader.next(), m.device);
  const double data_ms = ms_since(t0);
  StepResult r = train_step(m, tokens, step, cfg, options, hooks);
  r.data_ms = data_ms;
  r.step_ms += data_ms;
  return r;
}

void StepResult::add_to(JsonObject& rec) const {
  rec.add("loss", loss).add("aux_loss", aux_loss).add("lr", lr).add("grad_norm", grad_norm);
  rec.add("tokens_per_s", static_cast<double>(tokens) / std::max(step_ms / 1e3, 1e-9))
      .add("step_ms", step_ms);
  if (forward_ms >= 0)
    rec.add("forward_ms", forward_ms).add("backward_ms", backward_ms).add("update_ms", update_ms);
  if (data_ms > 0) rec.add("data_ms", data_ms);
}

}  // namespace pcmoe::train
