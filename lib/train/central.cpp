// pcmoe-central, mode central (see central.h).
#include "train/central.h"

#include <fmt/format.h>

#include <chrono>

#include "common/error.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/machine.h"
#include "common/party_config.h"
#include "common/signals.h"
#include "common/timer.h"
#include "data/loader.h"
#include "model/backbone.h"
#include "model/compat.h"
#include "model/expert.h"
#include "model/footprint.h"
#include "model/optim.h"
#include "train/checkpoint.h"
#include "train/evaluate.h"
#include "train/metrics.h"
#include "train/step.h"

namespace pcmoe::train {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

struct CentralState {
  const CentralConfig& cfg;
  torch::Device device;
  model::Backbone backbone;
  model::ExpertShard experts;
  model::LocalDispatcher dispatcher;
  std::unique_ptr<model::AdamW> opt;
  // Mode central: one loader on `data`. Mode mix: one per party config (their data), every step
  // one batch of each (protocol.mix: all) or of one in turn (rotate); held out: all of theirs.
  std::vector<data::BatchLoader> loaders;
  std::vector<data::Batch> heldout;
  int64_t step = 0;

  explicit CentralState(const CentralConfig& c)
      : cfg(c),
        device(model::parse_device(c.run.device)),
        backbone(c.model, c.run.seed),
        experts(c.model, c.train.expert_seed, [](int, int) { return true; }),
        dispatcher(experts) {
    if (c.mode == "mix") {
      for (const auto& path : c.protocol.party_configs) {
        const DataConfig d =
            load_party_config(path, c.shared_overrides, /*check_data=*/true, /*read_keys=*/false).data;
        loaders.emplace_back(d, data::Split::train, c.train.batch_size, c.model.seq_len);
        for (auto& b : data::heldout_batches(d, c.train.eval_batches, c.train.batch_size, c.model.seq_len))
          heldout.push_back(std::move(b));
      }
    } else {
      loaders.emplace_back(c.data, data::Split::train, c.train.batch_size, c.model.seq_len);
      heldout = data::heldout_batches(c.data, c.train.eval_batches, c.train.batch_size, c.model.seq_len);
    }
    backbone->to(device);
    experts.to(device);
    std::vector<model::NamedParam> params;
    for (auto& p : backbone->named_parameters()) params.push_back({"backbone." + p.key(), p.value()});
    for (auto& [name, t] : experts.named_expert_params()) params.push_back({"experts." + name, t});
    opt = std::make_unique<model::AdamW>(std::move(params), c.train);
    opt->reserve_state();
  }

  // This step's tokens on the device: mode central one batch; mix: one of every party, or of one in turn.
  torch::Tensor next_tokens() {
    if (loaders.size() == 1) return batch_tensor(loaders[0].next(), device);
    if (cfg.protocol.mix == "rotate")
      return batch_tensor(loaders[static_cast<size_t>(step) % loaders.size()].next(), device);
    std::vector<torch::Tensor> parts;
    for (auto& l : loaders) parts.push_back(batch_tensor(l.next(), device));
    return torch::cat(parts, 0);
  }
  static std::string pos_key(const char* what, size_t i) {
    return i == 0 ? std::string("data_") + what : fmt::format("data_{}_{}", what, i);
  }

  std::string checkpoint_path() const { return fs::join(cfg.run.out_dir, "checkpoint.pcmoe"); }

  void save() {
    model::NamedTensors tensors = model::module_state(*backbone, "backbone.");
    for (auto& [name, t] : experts.named_expert_params()) tensors.emplace_back("experts." + name, t);
    for (auto& st : opt->state_tensors("opt.")) tensors.push_back(st);
    std::map<std::string, std::string> meta = {
        {"kind", "central"},
        {"step", std::to_string(step)},
        {"config_hash", model_config_hash(cfg.model, cfg.train)},
    };
    for (size_t i = 0; i < loaders.size(); ++i) {
      meta[pos_key("epoch", i)] = std::to_string(loaders[i].position().epoch);
      meta[pos_key("sequences", i)] = std::to_string(loaders[i].position().sequences);
    }
    save_checkpoint(checkpoint_path(), cfg.model, meta, tensors);
    PCMOE_INFO("train.checkpoint").kv("path", checkpoint_path()).kv("step", step);
  }

  void restore(const std::string& path) {
    TensorFile file = load_checkpoint(path, cfg.model);
    load_model_weights(file, backbone, experts);
    opt->load_state([&](const std::string& n) { return model::find_tensor(file, n); }, "opt.");
    step = meta_int(file, "step", 0);
    for (size_t i = 0; i < loaders.size(); ++i) {
      loaders[i].seek({static_cast<uint64_t>(meta_int(file, pos_key("epoch", i), 0)),
                       static_cast<uint64_t>(meta_int(file, pos_key("sequences", i), 0))});
    }
    PCMOE_INFO("train.resumed").kv("path", path).kv("step", step);
  }
};

std::string progress_text(int64_t step, int64_t total, double loss, double eval_loss, double eval_bpb,
                          double tok_s, double eta_s) {
  std::string s = fmt::format("step {}/{} | loss {:.4f}", step, total, loss);
  if (eval_loss >= 0) s += fmt::format(" | eval {:.4f} ({:.3f} bpb)", eval_loss, eval_bpb);
  s += fmt::format(" | {:.0f} tok/s | ETA {}", tok_s, format_duration(eta_s));
  return s;
}

// Each expert's share of this step's routed tokens, per MoE layer: the load the selection bias
// balances (a federation uses the hub's global load instead).
std::vector<std::vector<double>> local_load(const std::vector<model::LayerStats>& stats) {
  std::vector<std::vector<double>> load;
  for (const auto& ls : stats) {
    double total = 0;
    for (auto c : ls.counts) total += static_cast<double>(c);
    std::vector<double> share;
    for (auto c : ls.counts) share.push_back(total > 0 ? static_cast<double>(c) / total : 0.0);
    load.push_back(share);
  }
  return load;
}

uint64_t log_start(const CentralConfig& cfg, CentralState& st) {
  PCMOE_INFO("train.start")
      .kv("mode", cfg.mode)
      .kv("device", cfg.run.device)
      .kv("torch", model::torch_version())
      .kv("threads", static_cast<int64_t>(torch::get_num_threads()))
      .kv("backbone_params", st.backbone->parameter_count())
      .kv("expert_params", st.experts.parameter_count())
      .kv("start_step", st.step)
      .kv("steps", cfg.train.steps)
      .kv("config_hash", model_config_hash(cfg.model, cfg.train));
  model::FootprintInput in;
  in.backbone_params = st.backbone->parameter_count();
  in.hosted_expert_params = st.experts.parameter_count();
  in.hosted_experts_per_layer = cfg.model.n_experts;
  in.bf16 = cfg.train.dtype == "bf16" && st.device.is_cuda();
  auto fp = model::estimate_footprint(cfg.model, cfg.train, in);
  PCMOE_INFO("train.footprint")
      .kv("estimate_bytes", fp.total())
      .kv("backbone_state_bytes", fp.backbone_state)
      .kv("expert_state_bytes", fp.expert_state)
      .kv("activations_bytes", fp.activations);
  return fp.total();
}

// Why the loop must stop before the next step ("" to go on).
std::string stop_reason(const CentralConfig& cfg, int64_t step, Clock::time_point t0) {
  if (signals::stop_requested()) return "signal";
  if (cfg.run.stop_at_step > 0 && step >= cfg.run.stop_at_step) {
    PCMOE_INFO("train.stop_at_step").kv("step", step);
    return "stop_at_step";
  }
  if (cfg.run.max_minutes > 0 && seconds_since(t0) > cfg.run.max_minutes * 60) {
    PCMOE_INFO("train.time_budget_spent").kv("minutes", cfg.run.max_minutes).kv("step", step);
    return "time budget";
  }
  return "";
}

EvalResult eval_and_log(CentralState& st, bool bf16) {
  auto ev = evaluate(st.backbone, st.dispatcher, st.heldout, st.device, bf16);
  PCMOE_INFO("train.eval")
      .kv("step", st.step)
      .kv("eval_loss", ev.loss)
      .kv("eval_bpb", ev.bits_per_byte)
      .kv("tokens", ev.tokens);
  return ev;
}

// The end: checkpoint, final evaluation when the last one is stale, export, summary.
void finish(const CentralConfig& cfg, CentralState& st, TrainSummary& sum, double last_eval,
            double last_bpb) {
  const bool bf16 = cfg.train.dtype == "bf16";
  if (cfg.run.save_on_exit || sum.interrupted) {
    st.save();
    sum.checkpoint_path = st.checkpoint_path();
  }
  if (last_eval < 0 || sum.interrupted || st.step < cfg.train.steps) {
    auto ev = eval_and_log(st, bf16);
    last_eval = ev.loss;
    last_bpb = ev.bits_per_byte;
  }
  sum.eval_loss = last_eval;
  sum.eval_bpb = last_bpb;
  if (cfg.run.save_on_exit) {
    sum.export_path = fs::join(cfg.run.out_dir, "model.pcmoe");
    export_model(sum.export_path, cfg.model, st.backbone, st.experts,
                 {{"step", std::to_string(st.step)}, {"source", "pcmoe-central"}});
  }
  const auto peak = model::peak_memory(st.device);
  sum.peak_memory_bytes = peak.allocated_bytes;
  sum.peak_reserved_bytes = peak.reserved_bytes;
  sum.optimizer_state_params = st.opt->state_tensors("").size() / 3;
  PCMOE_INFO("train.done")
      .kv("step", st.step)
      .kv("interrupted", sum.interrupted)
      .kv("eval_loss", sum.eval_loss)
      .kv("eval_bpb", sum.eval_bpb)
      .kv("wall_s", sum.wall_s)
      .kv("tokens_per_s", sum.tokens_per_s)
      .kv("peak_memory_bytes", sum.peak_memory_bytes)
      .kv("export", sum.export_path);
}

// The run's starting weights: its own checkpoint (run.resume), else run.init_from, else fresh.
void restore_or_init(const CentralConfig& cfg, CentralState& st) {
  if (cfg.run.resume && fs::exists(st.checkpoint_path())) {
    st.restore(st.checkpoint_path());
  } else if (!cfg.run.init_from.empty()) {
    load_model_weights(load_checkpoint(cfg.run.init_from, cfg.model), st.backbone, st.experts);
    PCMOE_WARN("train.init_from").kv("path", cfg.run.init_from);
  }
}

}  // namespace

TrainSummary run_central(const CentralConfig& cfg) {
  model::set_threads(cfg.run.threads);
  const torch::Device device = model::parse_device(cfg.run.device);
  model::check_model_fits(  // absurd sizes: refused before allocating
      cfg.model, device.is_cuda() ? model::device_total_memory(device) : machine::physical_memory_bytes(),
      cfg.run.device);
  fs::make_dirs(cfg.run.out_dir);
  CentralState st(cfg);
  const bool bf16 = cfg.train.dtype == "bf16";
  restore_or_init(cfg, st);
  MetricsWriter metrics(cfg.run.metrics_file.empty() ? fs::join(cfg.run.out_dir, "metrics.jsonl")
                                                     : cfg.run.metrics_file);
  TrainSummary sum;
  sum.footprint_estimate_bytes = log_start(cfg, st);
  const StepModel sm{&st.backbone, &st.dispatcher, st.opt.get(), nullptr, nullptr, st.device, bf16};
  StepOptions so;
  so.sync_free = true;                    // CUDA: no host sync between backward and AdamW
  so.time_phases = !st.device.is_cuda();  // free on the CPU only
  Progress progress(cfg.run.progress, cfg.train.steps);
  model::reset_peak_memory(st.device);
  const auto t0 = Clock::now();
  const int64_t first_step = st.step;
  int64_t tokens_done = 0;
  double last_eval = -1, last_bpb = -1, ema_tok_s = 0;
  while (st.step < cfg.train.steps) {
    const std::string why = stop_reason(cfg, st.step, t0);
    if (!why.empty()) {
      sum.interrupted = why == "signal";
      break;
    }
    const auto t_data = SteadyClock::now();
    const torch::Tensor tokens = st.next_tokens();
    const double data_ms = ms_since(t_data);
    StepResult r = train_step(sm, tokens, st.step, cfg.train, so);
    r.data_ms = data_ms;
    r.step_ms += data_ms;
    if (cfg.model.router.balance_bias_rate > 0)
      st.backbone->update_balance_bias(local_load(r.stats), cfg.model.router.balance_bias_rate);
    st.step += 1;
    tokens_done += r.tokens;
    const double tok_s = static_cast<double>(r.tokens) / std::max(r.step_ms / 1e3, 1e-9);
    ema_tok_s = ema_tok_s == 0 ? tok_s : 0.9 * ema_tok_s + 0.1 * tok_s;
    JsonObject rec;
    rec.add("step", st.step).add("tokens", tokens_done);
    r.add_to(rec);
    if ((cfg.train.eval_every > 0 && st.step % cfg.train.eval_every == 0) || st.step == cfg.train.steps) {
      auto ev = eval_and_log(st, bf16);
      last_eval = ev.loss;
      last_bpb = ev.bits_per_byte;
      rec.add("eval_loss", ev.loss).add("eval_bpb", ev.bits_per_byte);
    }
    auto mem = model::peak_memory(st.device);
    rec.add("peak_memory_bytes", mem.allocated_bytes).add("peak_reserved_bytes", mem.reserved_bytes);
    metrics.write(rec);
    if (st.step % cfg.run.log_every == 0) {
      PCMOE_INFO("train.step")
          .kv("step", st.step)
          .kv("loss", r.loss)
          .kv("aux_loss", r.aux_loss)
          .kv("lr", r.lr)
          .kv("tokens_per_s", tok_s);
    }
    const double eta = static_cast<double>(cfg.train.steps - st.step) * seconds_since(t0) /
                       static_cast<double>(std::max<int64_t>(1, st.step - first_step));
    progress.update(st.step,
                    progress_text(st.step, cfg.train.steps, r.loss, last_eval, last_bpb, ema_tok_s, eta));
    if (cfg.run.checkpoint_every > 0 && st.step % cfg.run.checkpoint_every == 0) st.save();
    sum.last_loss = r.loss;
  }
  progress.finish();
  sum.wall_s = seconds_since(t0);
  sum.steps_done = st.step;
  sum.tokens_per_s = static_cast<double>(tokens_done) / std::max(sum.wall_s, 1e-9);
  finish(cfg, st, sum, last_eval, last_bpb);
  return sum;
}

}  // namespace pcmoe::train
