// HubState's restart part: continuing a saved run (hub.resume; see hub_state.h and saved_state.h).
#include <fmt/format.h>

#include "common/error.h"
#include "common/log.h"
#include "hub/hub_state.h"

namespace pcmoe::hub {

void HubState::restore(const SavedHubState& saved, std::shared_ptr<const TensorFile> pool) {
  const std::string fix = "pick a new hub.out_dir, or start over with --set hub.resume=false";
  if (saved.model_hash != model_hash_) {
    const std::string steps_note =
        saved.total_steps != cfg_.train.steps
            ? fmt::format("; train.steps was {}, now {}", saved.total_steps, cfg_.train.steps)
            : "";
    throw ConfigError(fmt::format(
        "{}: the saved run has model hash {}, this configuration hashes to {} (model.* or train.* keys "
        "changed since{}); restore them, or {}",
        saved.path, saved.model_hash, model_hash_, steps_note, fix));
  }
  if (saved.step >= cfg_.train.steps) {
    throw ConfigError(fmt::format("{}: the saved run is complete (step {} of train.steps {}); {}", saved.path,
                                  saved.step, cfg_.train.steps, fix));
  }
  run_id_ = saved.run_id;
  step_ = saved.step;
  resumed_ = true;
  snapshot_seq_ = saved.snapshot_id;

  // The schedule: the rest of the saved round, when it is a round of this federation and seed.
  std::vector<uint32_t> order;
  std::string schedule = "continues the saved round";
  bool order_ok = saved.seed == cfg_.hub.seed && saved.steps_per_turn == cfg_.hub.steps_per_turn &&
                  saved.turn_index <= saved.round_order.size();
  for (uint32_t i : saved.round_order) order_ok = order_ok && i < registry_.size();
  if (order_ok) {
    order = saved.round_order;
  } else {
    schedule = "hub.seed, hub.steps_per_turn or the parties changed: a new round starts";
  }
  scheduler_.restore(saved.round, std::move(order), static_cast<size_t>(saved.turn_index),
                     saved.turns_issued);

  // The running global expert load (the window starts empty).
  std::string load = "restored";
  if (const std::string shape = load_.shape_error(saved.load_running_counts); shape.empty()) {
    load_.restore_running(saved.load_running_counts, saved.load_steps);
  } else {
    load = "not restored: " + shape;
    PCMOE_WARN("hub.resume_load_dropped").kv("reason", load);
  }

  // Per-party totals, by id (a party no longer configured is dropped).
  for (const auto& t : saved.parties) {
    PartyRecord* p = registry_.find_id(t.id);
    if (p == nullptr) continue;
    p->totals = t.totals;
  }

  // The expert pool, when it is this run's and fits the model.
  std::string pool_note = "none saved";
  if (pool != nullptr) {
    auto hash = pool->meta.find("model_hash");
    if (hash == pool->meta.end() || hash->second != model_hash_) {
      pool_note = "not restored: another model hash";
    } else if (auto why = pool_.restore(std::move(pool)); !why.empty()) {
      pool_note = "not restored: " + why;
    } else {
      pool_note = fmt::format("restored (step {})", pool_.step());
    }
    if (pool_.empty()) PCMOE_WARN("hub.resume_pool_dropped").kv("reason", pool_note);
  }
  PCMOE_INFO("hub.resumed")
      .kv("from", saved.path)
      .kv("run_id", run_id_)
      .kv("saved_at", saved.saved_at)
      .kv("saved_state", saved.state)
      .kv("step", step_)
      .kv("total_steps", cfg_.train.steps)
      .kv("round", saved.round)
      .kv("schedule", schedule)
      .kv("load", load)
      .kv("pool", pool_note)
      .kv("pool_step", pool_.step());
}

}  // namespace pcmoe::hub
