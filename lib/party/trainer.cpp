// A party's training state and step (see trainer.h).
#include "party/trainer.h"

#include <fmt/format.h>
#include <sys/random.h>
#include <sys/stat.h>

#include <chrono>

#include "common/error.h"
#include "common/fs.h"
#include "common/log.h"
#include "model/compat.h"
#include "model/tensor_io.h"
#include "party/wire.h"
#include "train/checkpoint.h"
#include "train/evaluate.h"

namespace pcmoe::party {
namespace {

using Clock = std::chrono::steady_clock;

uint64_t os_random_u64() {
  uint64_t v = 0;
  while (v == 0) {
    if (::getrandom(&v, sizeof v, 0) != static_cast<ssize_t>(sizeof v)) throw Error("getrandom failed");
  }
  return v;
}

std::vector<model::NamedParam> named(const std::vector<std::pair<std::string, torch::Tensor>>& items,
                                     const std::string& prefix) {
  std::vector<model::NamedParam> out;
  for (const auto& [n, t] : items) out.push_back({prefix + n, t});
  return out;
}

}  // namespace

uint64_t private_backbone_seed(const PartyConfig& cfg, std::string* source) {
  if (cfg.run.seed != 0) {
    if (source) *source = "config";
    return cfg.run.seed;
  }
  const std::string path = fs::join(cfg.run.out_dir, "backbone.seed");
  if (fs::exists(path)) {
    std::string text = fs::read_file(path);
    try {
      uint64_t v = std::stoull(text);
      if (v != 0) {
        if (source) *source = "file";
        return v;
      }
    } catch (...) {
    }
    throw DataError(fmt::format(
        "{}: not a seed (expected a positive integer); delete it to draw a new private seed", path));
  }
  fs::make_dirs(cfg.run.out_dir);
  uint64_t v = os_random_u64();
  fs::atomic_write(path, std::to_string(v) + "\n");
  ::chmod(path.c_str(), 0600);
  if (source) *source = "generated";
  return v;
}

PartyTrainer::PartyTrainer(const PartyConfig& cfg, uint64_t backbone_seed, Placement placement,
                           ExpertLink& link)
    : cfg_(cfg),
      device_(model::parse_device(cfg.run.device)),
      bf16_(cfg.train.dtype == "bf16"),
      placement_(std::move(placement)),
      link_(link) {
  backbone_ = model::Backbone(cfg.model, backbone_seed);
  backbone_->to(device_);
  const uint32_t self = placement_.self;
  const Placement& pl = placement_;
  shard_ = std::make_unique<model::ExpertShard>(
      cfg.model, cfg.train.expert_seed, [&pl, self](int l, int e) { return pl.host_of(l, e) == self; });
  shard_->to(device_);
  std::vector<model::NamedParam> bparams;
  for (auto& p : backbone_->named_parameters()) bparams.push_back({"backbone." + p.key(), p.value()});
  backbone_opt_ = std::make_unique<model::AdamW>(std::move(bparams), cfg.train);
  shard_opt_ = std::make_unique<model::AdamW>(named(shard_->named_expert_params(), "experts."), cfg.train);
  backbone_opt_->reserve_state();
  shard_opt_->reserve_state();

  HostOptions ho;
  ho.self_id = cfg.party.id;
  ho.device = device_;
  ho.bf16 = bf16_;
  ho.stale_ms = std::max(2 * cfg.party.request_timeout_ms, 10000);
  host_ = std::make_unique<ExpertHost>(cfg.model, cfg.train, *shard_, *shard_opt_, shard_mu_, ho);

  DispatchOptions dopt;
  dopt.self_id = cfg.party.id;
  dopt.device = device_;
  dopt.wire_dtype = resolve_wire_dtype(cfg.party.wire_dtype, device_);
  dopt.row_noise_std = cfg.privacy.row_noise_std;
  if (!cfg.privacy.local_only_layers.empty()) {
    ModelConfig probe = cfg.model;
    probe.moe_layers = cfg.privacy.local_only_layers;
    dopt.local_only_layers = probe.moe_layer_indices();
  }
  dopt.shuffle_seed = os_random_u64();  // private: row permutations must not be predictable
  // A host keeps an abandoned open step for stale_ms before another requester may take over:
  // a requester answered `busy` keeps asking at least that long.
  dopt.busy_retry_ms = ho.stale_ms + 5000;
  dopt.max_request_rows = cfg.party.max_request_rows;
  dispatcher_ = std::make_unique<FederatedDispatcher>(cfg.model, *shard_, placement_, link_, dopt);

  loader_ = std::make_unique<data::BatchLoader>(cfg.data, data::Split::train, cfg.train.batch_size,
                                                cfg.model.seq_len);
  heldout_ = data::heldout_batches(cfg.data, cfg.train.eval_batches, cfg.train.batch_size, cfg.model.seq_len);
  metrics_ = std::make_unique<train::MetricsWriter>(
      cfg.run.metrics_file.empty() ? fs::join(cfg.run.out_dir, "metrics.jsonl") : cfg.run.metrics_file);
}

StepOutcome PartyTrainer::train_step(int64_t step, uint64_t turn_id) {
  const auto t0 = Clock::now();
  const uint64_t sent0 = link_.bytes_sent(), recv0 = link_.bytes_received();
  dispatcher_->begin_step(step);
  auto batch = loader_->next();
  auto tokens = train::batch_tensor(batch, device_);
  model::ForwardResult out;
  double sq = 0;
  // Phase times (wall clock; each phase ends in a device sync) and the waits inside them.
  const DispatchStats d0 = dispatcher_->stats();
  DispatchStats d1, d2;
  auto t_fwd = t0, t_bwd = t0;
  try {
    std::shared_lock<std::shared_mutex> read(shard_mu_);
    {
      model::AutocastGuard autocast(bf16_, device_);
      out = backbone_->forward(tokens, *dispatcher_);
    }
    (void)out.ce_loss.item<double>();  // ends the forward phase on the device too
    t_fwd = Clock::now();
    d1 = dispatcher_->stats();
    out.loss.backward();
    sq = model::grad_sq_norm(backbone_opt_->tensors()) + model::grad_sq_norm(shard_opt_->tensors());
    t_bwd = Clock::now();
    d2 = dispatcher_->stats();
  } catch (const Error& e) {
    abort_step(step, e.what());
    throw;
  } catch (const c10::Error& e) {
    abort_step(step, e.what_without_backtrace());
    throw ModelError(std::string("training step failed: ") + e.what_without_backtrace());
  }
  sq += dispatcher_->remote_grad_sq();
  const double loss_value = out.ce_loss.item<double>();
  if (!std::isfinite(loss_value) || !std::isfinite(sq)) {
    // Nothing has been applied yet: abort everywhere and let the turn end with the reason.
    const std::string why =
        fmt::format("non-finite training loss {} or gradient norm at step {}", loss_value, step);
    abort_step(step, why);
    throw ModelError(why);
  }
  const double grad_norm = std::sqrt(sq);
  const double scale = model::clip_scale(grad_norm, cfg_.train.grad_clip);
  const double lr = model::lr_at(cfg_.train, step);
  // The hosts apply their part first; only when all acknowledged does this party update its own
  // parameters, so a failed step changes nothing here.
  try {
    proto::StepEnd se;
    se.requester = cfg_.party.id;
    se.step = step;
    se.clip_scale = scale;
    for (uint32_t h : dispatcher_->hosts_called()) link_.send(h, se);
    for (uint32_t h : dispatcher_->hosts_called()) {
      auto reply = link_.wait(h, proto::MsgType::step_end_ack, static_cast<uint64_t>(step));
      if (auto* err = std::get_if<proto::ErrorMsg>(&reply)) {
        throw TransportError(fmt::format("host party {} refused step_end {}: {}", h, step, err->reason));
      }
    }
  } catch (const Error& e) {
    abort_step(step, e.what());
    throw;
  }
  backbone_opt_->step(lr, scale);
  {
    std::unique_lock<std::shared_mutex> write(shard_mu_);
    shard_opt_->step(lr, scale);
  }
  StepOutcome o;
  proto::StepReport& r = o.report;
  r.turn_id = turn_id;
  r.step = step;
  r.loss = loss_value;
  r.aux_loss = out.aux_loss.item<double>();
  r.tokens = static_cast<uint64_t>(out.tokens);
  r.lr = lr;
  for (const auto& ls : out.stats) {
    r.expert_counts.emplace_back(ls.counts.begin(), ls.counts.end());
    r.gate_mean.push_back(ls.gate_mean);
  }
  steps_done_ += 1;
  last_step_ = step;
  tokens_done_ += out.tokens;
  // Training traffic only; the evaluation's forward-only calls are counted apart.
  r.bytes_sent = link_.bytes_sent() - sent0;
  r.bytes_received = link_.bytes_received() - recv0;
  if (cfg_.train.eval_every > 0 && (step + 1) / cfg_.train.eval_every > last_eval_bucket_) {
    last_eval_bucket_ = (step + 1) / cfg_.train.eval_every;
    try {
      auto [loss, bpb] = evaluate();
      r.eval_loss = loss;
      o.eval_bpb = bpb;
      o.evaluated = true;
    } catch (const Error& e) {
      // The step is applied everywhere already: report it; only the evaluation is lost.
      PCMOE_WARN("party.eval_failed").kv("step", step + 1).kv("error", e.what());
    }
  }
  const auto t_end = Clock::now();
  r.step_ms = std::chrono::duration<double, std::milli>(t_end - t0).count();
  const DispatchStats d_end = dispatcher_->stats();
  auto mem = model::peak_memory(device_);
  r.peak_memory_bytes = mem.allocated_bytes;

  JsonObject rec;
  rec.add("step", step + 1)
      .add("party", cfg_.party.id)
      .add("party_steps", steps_done_)
      .add("tokens", tokens_done_);
  rec.add("loss", r.loss).add("aux_loss", r.aux_loss).add("lr", lr).add("grad_norm", grad_norm);
  rec.add("tokens_per_s", static_cast<double>(r.tokens) / std::max(r.step_ms / 1e3, 1e-9))
      .add("step_ms", r.step_ms);
  rec.add("bytes_sent", r.bytes_sent).add("bytes_received", r.bytes_received);
  rec.add("rows_sent_total", dispatcher_->stats().rows_sent);
  if (o.evaluated) {
    rec.add("eval_bytes_sent", link_.bytes_sent() - sent0 - r.bytes_sent);
    rec.add("eval_bytes_received", link_.bytes_received() - recv0 - r.bytes_received);
  }
  rec.add("remote_wait_ms", d_end.wait_ms).add("serialize_ms", d_end.serialize_ms);
  // This step's phases: forward (loader to loss), backward (to the gradient norm), update (hosts'
  // step_end, own optimizer, evaluation when due), each with its waiting for hosts and wire
  // (de)serialisation.
  const auto ms = [](Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double, std::milli>(b - a).count();
  };
  rec.add("forward_ms", ms(t0, t_fwd))
      .add("forward_wait_ms", d1.wait_ms - d0.wait_ms)
      .add("forward_serialize_ms", d1.serialize_ms - d0.serialize_ms);
  rec.add("backward_ms", ms(t_fwd, t_bwd))
      .add("backward_wait_ms", d2.wait_ms - d1.wait_ms)
      .add("backward_serialize_ms", d2.serialize_ms - d1.serialize_ms);
  rec.add("update_ms", ms(t_bwd, t_end));
  const HostStats hs = host_->stats();
  rec.add("host_compute_ms", hs.compute_ms).add("host_rows_forward", hs.rows_forward);
  if (o.evaluated) rec.add("eval_loss", r.eval_loss).add("eval_bpb", o.eval_bpb);
  rec.add("peak_memory_bytes", mem.allocated_bytes).add("peak_reserved_bytes", mem.reserved_bytes);
  metrics_->write(rec);
  return o;
}

void PartyTrainer::abort_step(int64_t step, const std::string& reason) {
  PCMOE_WARN("party.step_aborted").kv("step", step).kv("reason", reason);
  proto::StepAbort a;
  a.requester = cfg_.party.id;
  a.step = step;
  a.reason = reason;
  for (uint32_t h : dispatcher_->hosts_called()) {
    try {
      link_.send(h, a);
      link_.wait(h, proto::MsgType::step_abort_ack, static_cast<uint64_t>(step));
    } catch (const Error& e) {
      PCMOE_WARN("party.abort_unacknowledged").kv("host", static_cast<int64_t>(h)).kv("error", e.what());
    }
  }
  backbone_opt_->zero_grad();
  std::unique_lock<std::shared_mutex> write(shard_mu_);
  shard_opt_->zero_grad();
}

std::pair<double, double> PartyTrainer::evaluate() {
  dispatcher_->begin_step(std::max<int64_t>(last_step_, 0));
  std::shared_lock<std::shared_mutex> read(shard_mu_);
  auto r = train::evaluate(backbone_, *dispatcher_, heldout_, device_, bf16_);
  last_eval_loss_ = r.loss;
  PCMOE_INFO("party.eval").kv("step", last_step_ + 1).kv("eval_loss", r.loss).kv("eval_bpb", r.bits_per_byte);
  return {r.loss, r.bits_per_byte};
}

proto::Snapshot PartyTrainer::snapshot(uint64_t snapshot_id, int64_t step) {
  proto::Snapshot s;
  s.snapshot_id = snapshot_id;
  s.step = step;
  std::shared_lock<std::shared_mutex> read(shard_mu_);
  for (auto& [name, p] : shard_->named_expert_params()) {
    s.names.push_back(name);
    s.tensors.push_back(to_wire(p, DType::f32));
  }
  return s;
}

void PartyTrainer::export_model(const std::string& path, const proto::Pool& pool) {
  model::ExpertShard all(cfg_.model, cfg_.train.expert_seed, [](int, int) { return true; });
  std::map<std::string, const proto::WireTensor*> by_name;
  for (size_t i = 0; i < pool.names.size() && i < pool.tensors.size(); ++i)
    by_name[pool.names[i]] = &pool.tensors[i];
  torch::NoGradGuard no_grad;
  std::shared_lock<std::shared_mutex> read(shard_mu_);
  auto mine = shard_->named_expert_params();
  std::map<std::string, torch::Tensor> own(mine.begin(), mine.end());
  int from_pool = 0;
  for (auto& [name, p] : all.named_expert_params()) {
    auto it = by_name.find(name);
    if (it != by_name.end()) {
      auto t = from_wire(*it->second, torch::kCPU, torch::kFloat32);
      PCMOE_CHECK_T(DataError, t.sizes() == p.sizes(), "pool tensor '{}' has shape {}, expected {}", name,
                    model::shape_str(t), model::shape_str(p));
      p.copy_(t);
      ++from_pool;
    } else if (own.count(name)) {
      p.copy_(own[name].to(torch::kCPU));
    } else {
      throw DataError(fmt::format(
          "the expert pool (step {}) has no tensor '{}': cannot export a complete model", pool.step, name));
    }
  }
  train::export_model(path, cfg_.model, backbone_, all,
                      {{"step", std::to_string(last_step_ + 1)},
                       {"party", cfg_.party.id},
                       {"pool_step", std::to_string(pool.step)},
                       {"source", "pcmoe-party"}});
  PCMOE_INFO("party.exported").kv("path", path).kv("pool_step", pool.step).kv("pool_tensors", from_pool);
}

void PartyTrainer::save_checkpoint(const std::string& path) {
  model::NamedTensors tensors = model::module_state(*backbone_, "backbone.");
  {
    // Copies of the shard (hosting may step it while the file is written) go to host memory: a
    // checkpoint must not need GPU memory beyond the party's limit.
    const auto to_host = [](const torch::Tensor& t) {
      return t.detach().to(torch::kCPU, /*non_blocking=*/false, /*copy=*/true);
    };
    std::shared_lock<std::shared_mutex> read(shard_mu_);
    for (auto& [name, t] : shard_->named_expert_params()) tensors.emplace_back("experts." + name, to_host(t));
    for (auto& st : shard_opt_->state_tensors("opt.")) tensors.emplace_back(st.first, to_host(st.second));
  }
  for (auto& st : backbone_opt_->state_tensors("opt.")) tensors.push_back(st);
  auto pos = loader_->position();
  std::map<std::string, std::string> meta = {
      {"kind", "party"},
      {"party", cfg_.party.id},
      {"party_index", std::to_string(placement_.self)},
      {"n_parties", std::to_string(placement_.n_parties)},
      {"step", std::to_string(last_step_ + 1)},
      {"steps_done", std::to_string(steps_done_)},
      {"tokens", std::to_string(tokens_done_)},
      {"data_epoch", std::to_string(pos.epoch)},
      {"data_sequences", std::to_string(pos.sequences)},
      {"eval_bucket", std::to_string(last_eval_bucket_)},
      {"config_hash", model_config_hash(cfg_.model, cfg_.train)},
  };
  train::save_checkpoint(path, cfg_.model, meta, tensors);
  PCMOE_INFO("party.checkpoint").kv("path", path).kv("step", last_step_ + 1);
}

std::optional<int64_t> PartyTrainer::restore_checkpoint(const std::string& path) {
  if (!fs::exists(path)) return std::nullopt;
  TensorFile file = train::load_checkpoint(path, cfg_.model);
  auto meta = [&](const char* k) { return file.meta.count(k) ? file.meta.at(k) : std::string(); };
  if (meta("party") != cfg_.party.id) {
    throw ConfigError(fmt::format("{}: checkpoint belongs to party '{}', this is party '{}'", path,
                                  meta("party"), cfg_.party.id));
  }
  if (meta("n_parties") != std::to_string(placement_.n_parties) ||
      meta("party_index") != std::to_string(placement_.self)) {
    throw ConfigError(
        fmt::format("{}: checkpoint was made as party {} of {} but the hub placed this party at {} of {}; "
                    "move the checkpoint away to start fresh",
                    path, meta("party_index"), meta("n_parties"), placement_.self, placement_.n_parties));
  }
  model::load_module_state(*backbone_, file, "backbone.", true);
  {
    std::unique_lock<std::shared_mutex> write(shard_mu_);
    model::load_module_state(*shard_, file, "experts.", true);
    shard_opt_->load_state([&](const std::string& n) { return model::find_tensor(file, n); }, "opt.");
  }
  backbone_opt_->load_state([&](const std::string& n) { return model::find_tensor(file, n); }, "opt.");
  const int64_t step = train::meta_int(file, "step", 0);
  last_step_ = step - 1;
  steps_done_ = train::meta_int(file, "steps_done", 0);
  tokens_done_ = train::meta_int(file, "tokens", 0);
  last_eval_bucket_ = train::meta_int(file, "eval_bucket", 0);
  loader_->seek({static_cast<uint64_t>(train::meta_int(file, "data_epoch", 0)),
                 static_cast<uint64_t>(train::meta_int(file, "data_sequences", 0))});
  PCMOE_INFO("party.resumed").kv("path", path).kv("step", step).kv("steps_done", steps_done_);
  return step;
}

void PartyTrainer::update_balance_bias(const std::vector<std::vector<double>>& load) {
  backbone_->update_balance_bias(load, cfg_.model.router.balance_bias_rate);
}

}  // namespace pcmoe::party

namespace pcmoe::party {

model::Footprint PartyTrainer::footprint() const {
  model::FootprintInput in;
  in.backbone_params = backbone_->parameter_count();
  in.hosted_expert_params = shard_->parameter_count();
  std::map<int, int> per_layer;
  for (const auto& [key, ex] : shard_->experts()) per_layer[key.first]++;
  for (const auto& [layer, n] : per_layer)
    in.hosted_experts_per_layer = std::max(in.hosted_experts_per_layer, n);
  in.n_parties = static_cast<int>(placement_.n_parties);
  in.bf16 = bf16_;
  in.wire_bytes = static_cast<int>(dtype_size(resolve_wire_dtype(cfg_.party.wire_dtype, device_)));
  return model::estimate_footprint(cfg_.model, cfg_.train, in);
}

void PartyTrainer::apply_memory_limit(uint64_t limit) {
  if (limit == 0) return;
  const model::Footprint f = footprint();
  if (f.minimum() > limit) {
    throw ConfigError(fmt::format(
        "party.memory_limit_mb = {} MiB is below this party's minimum footprint of {:.0f} MiB:\n{}\n"
        "raise the limit, add parties (fewer experts each), or lower train.batch_size / use a smaller preset",
        limit >> 20, static_cast<double>(f.minimum()) / (1 << 20), f.table()));
  }
  model::set_memory_limit(device_, limit);
  // What the host may keep for other parties' backward: the limit minus the state (its own step
  // never overlaps with hosting).
  const uint64_t fixed = f.backbone_state + f.expert_state + f.weight_casts + f.host_gradients;
  const uint64_t stash_budget = std::max<uint64_t>(limit > fixed ? limit - fixed : 0, f.remote_stash_min);
  host_->set_max_stash_bytes(stash_budget);
  PCMOE_INFO("party.memory_limit")
      .kv("limit_bytes", limit)
      .kv("estimate_bytes", f.total())
      .kv("minimum_bytes", f.minimum())
      .kv("stash_budget_bytes", stash_budget)
      .kv("recompute_possible", f.total() > limit);
}

}  // namespace pcmoe::party
