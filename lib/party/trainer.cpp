// A party's training state and step (see trainer.h).
#include "party/trainer.h"

#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <set>

#include "common/error.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/random.h"
#include "common/timer.h"
#include "model/compat.h"
#include "model/privacy.h"
#include "model/tensor_io.h"
#include "model/torch_error.h"
#include "party/privacy_setup.h"
#include "party/wire.h"
#include "train/checkpoint.h"
#include "train/evaluate.h"

namespace pcmoe::party {
namespace {

std::vector<model::NamedParam> named(const std::vector<std::pair<std::string, torch::Tensor>>& items,
                                     const std::string& prefix) {
  std::vector<model::NamedParam> out;
  for (const auto& [n, t] : items) out.push_back({prefix + n, t});
  return out;
}

// This step's remote calls, phase by phase: the requester's blocking work and waits (wall clock),
// and the requests as the hosts saw them (their timelines: sums over the step's requests).
void add_phase(JsonObject& rec, const char* name, const PhaseTimes& a, const PhaseTimes& b) {
  const std::string p = name;
  rec.add(p + "_wait_ms", b.wait_ms - a.wait_ms)
      .add(p + "_serialize_ms", b.serialize_ms() - a.serialize_ms());
  rec.add("tl_" + p + "_gather_ms", b.gather_ms - a.gather_ms)
      .add("tl_" + p + "_send_ms", b.send_ms - a.send_ms);
  rec.add("tl_" + p + "_stage_ms", b.stage_ms - a.stage_ms).add("tl_" + p + "_h2d_ms", b.h2d_ms - a.h2d_ms);
}

void add_remote(JsonObject& rec, const char* name, const RemoteTimes& a, const RemoteTimes& b) {
  const std::string p = std::string("tl_") + name + "_host_";
  rec.add(p + "requests", static_cast<int64_t>(b.requests - a.requests));
  rec.add(p + "same_clock", static_cast<int64_t>(b.same_clock - a.same_clock));
  rec.add(p + "out_ms", b.out_ms - a.out_ms).add(p + "back_ms", b.back_ms - a.back_ms);
  rec.add(p + "stage_ms", b.host_stage_ms - a.host_stage_ms).add(p + "h2d_ms", b.host_h2d_ms - a.host_h2d_ms);
  rec.add(p + "compute_ms", b.host_compute_ms - a.host_compute_ms)
      .add(p + "d2h_ms", b.host_d2h_ms - a.host_d2h_ms);
  rec.add(p + "check_ms", b.host_check_ms - a.host_check_ms)
      .add(p + "other_ms", b.host_other_ms - a.host_other_ms);
}

void add_timeline(JsonObject& rec, const DispatchStats& d0, const DispatchStats& d1) {
  add_phase(rec, "forward", d0.forward, d1.forward);
  add_phase(rec, "backward", d0.backward, d1.backward);
  rec.add("update_wait_ms", d1.commit.wait_ms - d0.commit.wait_ms);
  add_remote(rec, "forward", d0.remote_forward, d1.remote_forward);
  add_remote(rec, "backward", d0.remote_backward, d1.remote_backward);
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
  fs::atomic_write(path, std::to_string(v) + "\n");  // 0600
  if (source) *source = "generated";
  return v;
}

uint64_t log_party_start(const PartyConfig& cfg) {
  std::string seed_source;
  const uint64_t seed = private_backbone_seed(cfg, &seed_source);
  PCMOE_INFO("party.start")
      .kv("party", cfg.party.id)
      .kv("device", cfg.run.device)
      .kv("torch", model::torch_version())
      .kv("seed_source", seed_source)
      .kv("config_hash", model_config_hash(cfg.model, cfg.train));
  if (cfg.privacy.shared_init || !cfg.run.init_from.empty()) {
    PCMOE_WARN("privacy.shared_backbone")
        .kv("message",
            "this backbone starts from the federation's shared initialisation: hosts whose backbone "
            "shares it can decode most tokens from the rows they serve (README Privacy). Defences: "
            "privacy.rotate_hidden, privacy.local_only_layers for the early MoE layers, "
            "privacy.row_clip with row_noise_std")
        .kv("rotate_hidden", cfg.privacy.rotate_hidden)
        .kv("row_clip", cfg.privacy.row_clip)
        .kv("row_noise_std", cfg.privacy.row_noise_std)
        .kv("local_only_layers", cfg.privacy.local_only_layers);
  }
  log_row_mechanism(cfg);
  return seed;
}

PartyTrainer::PartyTrainer(const PartyConfig& cfg, uint64_t backbone_seed, Placement placement,
                           ExpertLink& link)
    : cfg_(cfg),
      device_(model::parse_device(cfg.run.device)),
      bf16_(cfg.train.dtype == "bf16"),
      placement_(std::move(placement)) {
  backbone_ = model::initial_backbone(cfg.model, cfg.train, cfg.privacy, backbone_seed);
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
  const Captures captures = open_captures(cfg);
  ho.received_capture = captures.received;
  ho.capture_every = cfg.audit.capture_every;
  ho.self_index = placement_.self;
  host_ = std::make_unique<ExpertHost>(cfg.model, cfg.train, *shard_, *shard_opt_, shard_mu_, ho);

  DispatchOptions dopt;
  dopt.self_id = cfg.party.id;
  dopt.device = device_;
  dopt.wire_dtype = resolve_wire_dtype(cfg.party.wire_dtype, device_);
  dopt.row_clip = cfg.privacy.row_clip;
  dopt.row_noise_std = cfg.privacy.row_noise_std;
  dopt.sent_capture = captures.sent;
  dopt.capture_every = cfg.audit.capture_every;
  dopt.local_only_layers = local_only_layer_indices(cfg);
  dopt.shuffle_seed = os_random_u64();  // private: row permutations must not be predictable
  // A host keeps an abandoned open step for stale_ms before another requester may take over:
  // a requester answered `busy` keeps asking at least that long.
  dopt.busy_retry_ms = ho.stale_ms + 5000;
  dopt.max_request_rows = cfg.party.max_request_rows;
  dispatcher_ = std::make_unique<FederatedDispatcher>(cfg.model, *shard_, placement_, link, dopt);

  loader_ = std::make_unique<data::BatchLoader>(cfg.data, data::Split::train, cfg.train.batch_size,
                                                cfg.model.seq_len);
  heldout_ = data::heldout_batches(cfg.data, cfg.train.eval_batches, cfg.train.batch_size, cfg.model.seq_len);
  metrics_ = std::make_unique<train::MetricsWriter>(
      cfg.run.metrics_file.empty() ? fs::join(cfg.run.out_dir, "metrics.jsonl") : cfg.run.metrics_file);
}

StepOutcome PartyTrainer::train_step(int64_t step, uint64_t turn_id) {
  const uint64_t sent0 = dispatcher_->bytes_sent(), recv0 = dispatcher_->bytes_received();
  const DispatchStats d0 = dispatcher_->stats();
  dispatcher_->begin_step(step);
  model::AdamW* experts_opt = concurrent_ ? nullptr : shard_opt_.get();  // concurrent: the round's commit
  const train::StepModel sm{
      &backbone_, dispatcher_.get(), backbone_opt_.get(), experts_opt, &shard_mu_, device_, bf16_};
  const train::StepResult r = train::train_step(sm, *loader_, step, cfg_.train, {}, dispatcher_.get());
  steps_done_ += 1;
  last_step_ = step;
  tokens_done_ += r.tokens;
  StepOutcome o;
  o.report = report_of(r, turn_id);
  // Training traffic only; the evaluation's forward-only calls are counted apart.
  o.report.bytes_sent = dispatcher_->bytes_sent() - sent0;
  o.report.bytes_received = dispatcher_->bytes_received() - recv0;
  const DispatchStats d1 = dispatcher_->stats();
  JsonObject rec;
  rec.add("step", step + 1)
      .add("party", cfg_.party.id)
      .add("party_steps", steps_done_)
      .add("tokens", tokens_done_);
  r.add_to(rec);
  rec.add("bytes_sent", o.report.bytes_sent).add("bytes_received", o.report.bytes_received);
  rec.add("rows_sent_total", d1.rows_sent);
  rec.add("remote_wait_ms", d1.wait_ms()).add("serialize_ms", d1.serialize_ms());
  // This step's phases: forward (to the loss), backward (to the gradient norm), update (the hosts'
  // step_end, the own optimizer), each with its waiting for hosts and wire (de)serialisation.
  add_timeline(rec, d0, d1);
  const HostStats hs = host_->stats();
  rec.add("host_compute_ms", hs.compute_ms).add("host_rows_forward", hs.rows_forward);
  if (cfg_.train.eval_every > 0 && (step + 1) / cfg_.train.eval_every > last_eval_bucket_) {
    last_eval_bucket_ = (step + 1) / cfg_.train.eval_every;
    evaluate_into(o, rec, sent0 + o.report.bytes_sent, recv0 + o.report.bytes_received);
  }
  const auto mem = model::peak_memory(device_);
  o.report.peak_memory_bytes = mem.allocated_bytes;
  rec.add("peak_memory_bytes", mem.allocated_bytes).add("peak_reserved_bytes", mem.reserved_bytes);
  metrics_->write(rec);
  if (cfg_.privacy.hub_report == "minimal") withhold_from_hub(o.report);
  return o;
}

void withhold_from_hub(proto::StepReport& r) {
  r.loss = -1;
  r.aux_loss = -1;
  r.eval_loss = -1;
  for (auto& layer : r.expert_counts) std::fill(layer.begin(), layer.end(), 0);
  for (auto& layer : r.gate_mean) std::fill(layer.begin(), layer.end(), 0.0);
}

proto::StepReport PartyTrainer::report_of(const train::StepResult& r, uint64_t turn_id) const {
  proto::StepReport rep;
  rep.turn_id = turn_id;
  rep.step = r.step;
  rep.loss = r.loss;
  rep.aux_loss = r.aux_loss;
  rep.tokens = static_cast<uint64_t>(r.tokens);
  rep.lr = r.lr;
  rep.step_ms = r.step_ms;
  for (const auto& ls : r.stats) {
    rep.expert_counts.emplace_back(ls.counts.begin(), ls.counts.end());
    rep.gate_mean.push_back(ls.gate_mean);
  }
  return rep;
}

void PartyTrainer::evaluate_into(StepOutcome& o, JsonObject& rec, uint64_t sent0, uint64_t recv0) {
  const auto t0 = SteadyClock::now();
  try {
    auto [loss, bpb] = evaluate();
    o.report.eval_loss = loss;
    o.eval_bpb = bpb;
    o.evaluated = true;
    rec.add("eval_loss", loss).add("eval_bpb", bpb).add("eval_ms", ms_since(t0));
    rec.add("eval_bytes_sent", dispatcher_->bytes_sent() - sent0);
    rec.add("eval_bytes_received", dispatcher_->bytes_received() - recv0);
  } catch (const Error& e) {
    // The step is applied everywhere already: report it; only the evaluation is lost.
    PCMOE_WARN("party.eval_failed").kv("step", last_step_ + 1).kv("error", e.what());
  }
}

std::pair<double, double> PartyTrainer::evaluate() {
  dispatcher_->begin_step(std::max<int64_t>(last_step_, 0));
  std::shared_lock<std::shared_mutex> read(shard_mu_);
  auto r = model::guarded("evaluation",
                          [&] { return train::evaluate(backbone_, *dispatcher_, heldout_, device_, bf16_); });
  last_eval_loss_ = r.loss;
  PCMOE_INFO("party.eval").kv("step", last_step_ + 1).kv("eval_loss", r.loss).kv("eval_bpb", r.bits_per_byte);
  return {r.loss, r.bits_per_byte};
}

void PartyTrainer::apply_directory(const std::vector<proto::PartyEntry>& dir) {
  std::vector<bool> alive(dir.size(), true);
  std::set<std::string> ids, lost;
  std::map<std::string, uint32_t> index_of;
  for (const auto& e : dir) {
    if (e.index < alive.size()) alive[e.index] = e.alive;
    ids.insert(e.party_id);
    index_of[e.party_id] = e.index;
    if (!e.alive) lost.insert(e.party_id);
  }
  dispatcher_->set_alive(alive);
  host_->set_known_parties(ids);
  host_->set_party_indices(std::move(index_of));
  host_->set_lost_parties(lost);  // their open steps must not block the others
}

void PartyTrainer::set_concurrent(bool on) {
  concurrent_ = on;
  host_->set_concurrent(on);
  dispatcher_->set_concurrent(on);
}

void PartyTrainer::update_balance_bias(const std::vector<std::vector<double>>& load) {
  backbone_->update_balance_bias(load, cfg_.model.router.balance_bias_rate);
}

}  // namespace pcmoe::party
