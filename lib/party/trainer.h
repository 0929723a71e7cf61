// Owns a party's training state and its step: the private backbone and its optimizer, the
// party's expert shard with its optimizer and lock, the expert host that serves the others, the
// federated dispatcher, the private data loader and held-out set, metrics, checkpoints, the
// expert snapshot and the exported model. One training step is train::train_step (lib/train/step.h)
// with the dispatcher as its hooks: forward through the backbone with remote experts, backward,
// global-norm clipping over the backbone + local experts + the hosts' expert gradients, step_end
// to every host called (step_abort to all of them on failure), then backbone and local-expert
// AdamW; plus the party's metrics record and the periodic held-out evaluation.
// Implementation: trainer.cpp (construction, the step, evaluation, directory), trainer_state.cpp
// (checkpoints, snapshot, export, footprint and memory limit, the end's summary).
// Thread-safety: the trainer is used by the daemon's main thread; only host() is called from the
// expert-service thread (ExpertHost is thread-safe and shares the shard lock).
#pragma once

#include <torch/torch.h>

#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <vector>

#include "common/party_config.h"
#include "data/loader.h"
#include "model/backbone.h"
#include "model/expert.h"
#include "model/footprint.h"
#include "model/optim.h"
#include "party/dispatcher.h"
#include "party/expert_host.h"
#include "party/expert_link.h"
#include "proto/messages.h"
#include "train/metrics.h"
#include "train/step.h"

namespace pcmoe::party {

// privacy.hub_report minimal: what a step report keeps from the hub (losses -1, routing counts and
// mean gates zero; tokens, timings, bytes and memory stay).
void withhold_from_hub(proto::StepReport& r);

struct StepOutcome {
  proto::StepReport report;
  bool evaluated = false;
  double eval_bpb = -1;
};

class PartyTrainer {
 public:
  // Builds the backbone from `backbone_seed` (the party's private seed) and the shard of the
  // experts `placement` assigns to this party. `link` reaches the other parties' hosts.
  PartyTrainer(const PartyConfig& cfg, uint64_t backbone_seed, Placement placement, ExpertLink& link);

  ExpertHost& host() { return *host_; }
  // Concurrent rounds (the welcome's schedule): the step clips and updates the backbone only;
  // this party's experts take the round's update from the hub's commit (ExpertHost).
  void set_concurrent(bool on);
  FederatedDispatcher& dispatcher() { return *dispatcher_; }
  const torch::Device& device() const { return device_; }

  // One training step at global step `step`. Throws TransportError (HostError: which host) or
  // ProtocolError when a host fails, ModelError for a non-finite loss or a libtorch failure; the
  // step is then aborted everywhere and no parameter changed.
  StepOutcome train_step(int64_t step, uint64_t turn_id);
  // Held-out loss and bits per byte of this party's model through the federation (eval-mode).
  std::pair<double, double> evaluate();

  // The party's experts as a snapshot message (CPU copies, under the shard lock).
  proto::Snapshot snapshot(uint64_t snapshot_id, int64_t step);
  // Writes this party's model — its backbone plus the pool — as a standalone exported model. With
  // the pool's per-host steps (protocol 1.2), its metadata and the party.exported line say how old
  // each host's experts are (`host_ids`: party id by index).
  void export_model(const std::string& path, const proto::Pool& pool,
                    const std::vector<std::string>& host_ids = {});
  // A party restarted without its checkpoint while the federation trains: the experts it hosts
  // take the pool's weights (their optimizer state starts again). Returns how many tensors were
  // loaded; throws DataError if the pool lacks one of them.
  int load_hosted_experts(const proto::Pool& pool);

  // Checkpoint of backbone, shard and both optimizers, data position and counters.
  void save_checkpoint(const std::string& path);
  // Restores it when present; returns the global step it was taken at (or nullopt).
  std::optional<int64_t> restore_checkpoint(const std::string& path);

  int64_t steps_done() const { return steps_done_; }
  int64_t last_step() const { return last_step_; }
  double last_eval_loss() const { return last_eval_loss_; }
  int64_t backbone_params() const { return backbone_->parameter_count(); }
  int64_t expert_params() const { return shard_->parameter_count(); }
  void update_balance_bias(const std::vector<std::vector<double>>& load);
  // A directory from the hub: lost parties' experts are masked, the host serves only the listed
  // parties and stops waiting for the lost ones' open steps.
  void apply_directory(const std::vector<proto::PartyEntry>& dir);
  // This party's memory footprint from the model config and its placement (footprint.h).
  model::Footprint footprint() const;
  // party.footprint (log) and the footprint table (stderr, for the operator's terminal).
  void log_footprint(uint64_t limit_bytes) const;
  // party.done: the end's summary (`model`: the exported model's path, "" if none).
  void log_done(double eval_loss, double eval_bpb, const std::string& model);
  // Applies party.memory_limit_mb: throws ConfigError (with the breakdown) if even the minimum
  // footprint does not fit; else caps the CUDA allocator and gives the expert host what is left
  // for rows kept for backward (beyond it the host recomputes, then answers busy).
  void apply_memory_limit(uint64_t limit_bytes);

 private:
  proto::StepReport report_of(const train::StepResult& r, uint64_t turn_id) const;
  // The periodic held-out evaluation after a step, into its report and metrics record.
  void evaluate_into(StepOutcome& o, JsonObject& rec, uint64_t sent0, uint64_t recv0);

  PartyConfig cfg_;
  torch::Device device_;
  bool bf16_;
  Placement placement_;
  model::Backbone backbone_{nullptr};
  std::unique_ptr<model::ExpertShard> shard_;
  std::unique_ptr<model::AdamW> backbone_opt_;
  std::unique_ptr<model::AdamW> shard_opt_;
  std::shared_mutex shard_mu_;
  std::unique_ptr<ExpertHost> host_;
  std::unique_ptr<FederatedDispatcher> dispatcher_;
  std::unique_ptr<data::BatchLoader> loader_;
  std::vector<data::Batch> heldout_;
  std::unique_ptr<train::MetricsWriter> metrics_;
  int64_t steps_done_ = 0;
  int64_t last_step_ = -1;
  int64_t tokens_done_ = 0;
  double last_eval_loss_ = -1;
  int64_t last_eval_bucket_ = 0;
  bool concurrent_ = false;
};

// The party's private backbone seed: run.seed if set, else the seed kept in
// <out_dir>/backbone.seed, else a fresh one from the OS (written there, mode 0600).
uint64_t private_backbone_seed(const PartyConfig& cfg, std::string* source);
// party.start (and the loud privacy.shared_backbone warning when the backbone starts from a
// shared checkpoint); returns private_backbone_seed().
uint64_t log_party_start(const PartyConfig& cfg);

}  // namespace pcmoe::party
