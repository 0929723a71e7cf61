// pcmoe-central, mode protocol (see protocol_sim.h).
#include "train/protocol_sim.h"

#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <functional>

#include "common/error.h"
#include "common/fs.h"
#include "common/hub_config.h"
#include "common/log.h"
#include "common/party_config.h"
#include "common/signals.h"
#include "common/turns.h"
#include "data/loader.h"
#include "model/backbone.h"
#include "model/compat.h"
#include "model/expert.h"
#include "model/optim.h"
#include "model/privacy.h"
#include "model/torch_error.h"
#include "train/checkpoint.h"
#include "train/evaluate.h"
#include "train/metrics.h"
#include "train/step.h"

namespace pcmoe::train {
namespace {

using Clock = std::chrono::steady_clock;

struct SimParty {
  PartyConfig cfg;
  model::Backbone backbone{nullptr};
  std::unique_ptr<model::AdamW> opt;
  std::unique_ptr<data::BatchLoader> loader;
  std::vector<data::Batch> heldout;
  double last_loss = -1, eval_loss = -1, eval_bpb = -1;
  int64_t steps = 0;
};

std::vector<SimParty> load_parties(const CentralConfig& cfg, const torch::Device& device) {
  const std::string hash = model_config_hash(cfg.model, cfg.train);
  std::vector<SimParty> parties;
  for (const auto& path : cfg.protocol.party_configs) {
    SimParty p;
    p.cfg = load_party_config(path, cfg.shared_overrides, /*check_data=*/true, /*read_keys=*/false);
    if (model_config_hash(p.cfg.model, p.cfg.train) != hash) {
      throw ConfigError(fmt::format("{}: its preset differs from this config's model/train (hash {} vs {})",
                                    path, model_config_hash(p.cfg.model, p.cfg.train), hash));
    }
    if (p.cfg.run.seed == 0) {
      throw ConfigError(fmt::format(
          "{}: run.seed is 0 (a random private seed); mode protocol needs the seed to reproduce the party",
          path));
    }
    p.backbone = model::initial_backbone(cfg.model, cfg.train, p.cfg.privacy, p.cfg.run.seed);
    p.backbone->to(device);
    std::vector<model::NamedParam> params;
    for (auto& t : p.backbone->named_parameters()) params.push_back({"backbone." + t.key(), t.value()});
    p.opt = std::make_unique<model::AdamW>(std::move(params), cfg.train);
    p.loader = std::make_unique<data::BatchLoader>(p.cfg.data, data::Split::train, cfg.train.batch_size,
                                                   cfg.model.seq_len);
    p.heldout =
        data::heldout_batches(p.cfg.data, cfg.train.eval_batches, cfg.train.batch_size, cfg.model.seq_len);
    parties.push_back(std::move(p));
  }
  return parties;
}

// The shared expert pool: every expert, one optimizer (each expert steps only when it has
// gradients, as on its host).
struct SimPool {
  model::ExpertShard experts;
  model::LocalDispatcher dispatcher;
  std::unique_ptr<model::AdamW> opt;

  SimPool(const CentralConfig& cfg, const torch::Device& device)
      : experts(cfg.model, cfg.train.expert_seed, [](int, int) { return true; }), dispatcher(experts) {
    experts.to(device);
    std::vector<model::NamedParam> params;
    for (auto& [name, t] : experts.named_expert_params()) params.push_back({"experts." + name, t});
    opt = std::make_unique<model::AdamW>(std::move(params), cfg.train);
  }
};

// A concurrent round's expert update, as the hub and the hosts do it (hub_rounds.cpp, ExpertHost).
void round_update(SimPool& pool, const TrainConfig& train, int64_t step, size_t parties) {
  model::guarded("round update", [&] {
    const double p = static_cast<double>(parties);
    const double norm = std::sqrt(model::grad_sq_norm(pool.opt->tensors())) / p;
    pool.opt->step(model::expert_lr_at(train, step), model::clip_scale(norm, train.grad_clip) / p);
  });
}

void export_parties(const CentralConfig& cfg, std::vector<SimParty>& parties, SimPool& pool, int64_t step,
                    const std::function<void(SimParty&)>& eval_party, TrainSummary& sum) {
  const auto n = static_cast<double>(parties.size());
  double mean_eval = 0, mean_bpb = 0;
  for (auto& p : parties) {
    if (p.eval_loss < 0 || step != cfg.train.steps) eval_party(p);
    mean_eval += p.eval_loss / n;
    mean_bpb += p.eval_bpb / n;
    const std::string path = fs::join(cfg.run.out_dir, "model-" + p.cfg.party.id + ".pcmoe");
    export_model(
        path, cfg.model, p.backbone, pool.experts,
        {{"step", std::to_string(step)}, {"party", p.cfg.party.id}, {"source", "pcmoe-central protocol"}});
    PCMOE_INFO("train.party_done")
        .kv("party", p.cfg.party.id)
        .kv("steps", p.steps)
        .kv("eval_loss", p.eval_loss)
        .kv("eval_bpb", p.eval_bpb)
        .kv("model", path);
  }
  sum.eval_loss = mean_eval;
  sum.eval_bpb = mean_bpb;
}

// One run of the simulation: the parties, the pool and the schedule, stepped one global step at
// a time.
struct SimRun {
  const CentralConfig& cfg;
  std::vector<SimParty>& parties;
  SimPool& pool;
  const TurnSchedule& schedule;
  torch::Device device;
  bool bf16 = false;
  bool concurrent = false;
  int64_t tokens_done = 0;
  TrainSummary sum;
  SimParty* last = nullptr;  // the party that trained last

  void eval_party(SimParty& p) {
    auto ev = evaluate(p.backbone, pool.dispatcher, p.heldout, device, bf16);
    p.eval_loss = ev.loss;
    p.eval_bpb = ev.bits_per_byte;
  }

  // Global step `step`. Sequential: the turn holder's step, clipped over its backbone and the
  // experts that received gradients, as a federation does. Concurrent (PROTOCOL.md 9.6): every
  // party's step on the same experts, each backbone clipped and updated alone; then one expert
  // update on the summed gradients times min(1, clip / norm of their mean) / parties. Returns the
  // metrics records (the held-out losses on the last one when an evaluation is due).
  std::vector<JsonObject> train(int64_t step) {
    std::vector<SimParty*> turn;
    if (concurrent) {
      for (auto& p : parties) turn.push_back(&p);
    } else {
      turn.push_back(&parties[schedule.party_at(step)]);
    }
    std::vector<JsonObject> recs;
    for (SimParty* p : turn) {
      const StepModel sm{&p->backbone, &pool.dispatcher, p->opt.get(), concurrent ? nullptr : pool.opt.get(),
                         nullptr,      device,           bf16};
      const StepResult r = train_step(sm, *p->loader, step, cfg.train);
      p->last_loss = r.loss;
      p->steps += 1;
      tokens_done += r.tokens;
      JsonObject rec;
      rec.add("step", step + 1).add("party", p->cfg.party.id).add("tokens", tokens_done);
      r.add_to(rec);
      recs.push_back(std::move(rec));
      sum.last_loss = r.loss;
      last = p;
    }
    if (concurrent) round_update(pool, cfg.train, step, turn.size());
    const int64_t done = step + 1;
    if ((cfg.train.eval_every > 0 && done % cfg.train.eval_every == 0) || done == cfg.train.steps) {
      for (auto& q : parties) {
        eval_party(q);
        recs.back()
            .add("eval_loss_" + q.cfg.party.id, q.eval_loss)
            .add("eval_bpb_" + q.cfg.party.id, q.eval_bpb);
      }
    }
    return recs;
  }
};

}  // namespace

TrainSummary run_protocol_sim(const CentralConfig& cfg) {
  model::set_threads(cfg.run.threads);
  fs::make_dirs(cfg.run.out_dir);
  const torch::Device device = model::parse_device(cfg.run.device);
  HubConfig hub = cfg.protocol.hub_config.empty()
                      ? HubConfig{}
                      : load_hub_config(cfg.protocol.hub_config, {}, /*read_keys=*/false);
  if (!cfg.protocol.schedule.empty()) hub.hub.schedule = cfg.protocol.schedule;
  std::vector<SimParty> parties = load_parties(cfg, device);
  const auto n = static_cast<uint32_t>(parties.size());
  SimPool pool(cfg, device);
  TurnSchedule schedule(hub.hub.seed, n, static_cast<uint32_t>(hub.hub.steps_per_turn));
  MetricsWriter metrics(cfg.run.metrics_file.empty() ? fs::join(cfg.run.out_dir, "metrics.jsonl")
                                                     : cfg.run.metrics_file);
  PCMOE_INFO("train.start")
      .kv("mode", "protocol")
      .kv("schedule", hub.hub.schedule)
      .kv("parties", static_cast<int64_t>(n))
      .kv("steps", cfg.train.steps)
      .kv("turn_seed", hub.hub.seed)
      .kv("steps_per_turn", static_cast<int64_t>(hub.hub.steps_per_turn));
  Progress progress(cfg.run.progress, cfg.train.steps);
  SimRun run{
      cfg, parties, pool, schedule, device, cfg.train.dtype == "bf16", hub.hub.schedule == "concurrent"};
  const auto t0 = Clock::now();
  int64_t step = 0;
  while (step < cfg.train.steps && !signals::stop_requested()) {
    if (cfg.run.max_minutes > 0 &&
        std::chrono::duration<double>(Clock::now() - t0).count() > cfg.run.max_minutes * 60)
      break;
    for (const auto& rec : run.train(step)) metrics.write(rec);
    step += 1;
    progress.update(step, fmt::format("step {}/{} | party {} loss {:.4f}", step, cfg.train.steps,
                                      run.last->cfg.party.id, run.last->last_loss));
  }
  progress.finish();
  TrainSummary& sum = run.sum;
  sum.interrupted = signals::stop_requested();
  sum.steps_done = step;
  sum.wall_s = std::chrono::duration<double>(Clock::now() - t0).count();
  sum.tokens_per_s = static_cast<double>(run.tokens_done) / std::max(sum.wall_s, 1e-9);
  export_parties(
      cfg, parties, pool, step, [&run](SimParty& p) { run.eval_party(p); }, sum);
  sum.export_path = cfg.run.out_dir;
  sum.peak_memory_bytes = model::peak_memory(device).allocated_bytes;
  PCMOE_INFO("train.done")
      .kv("mode", "protocol")
      .kv("step", step)
      .kv("mean_eval_loss", sum.eval_loss)
      .kv("wall_s", sum.wall_s);
  return sum;
}

}  // namespace pcmoe::train
