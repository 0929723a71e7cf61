// PartyTrainer's state on disk and on the wire (see trainer.h): checkpoints and their restore,
// the expert snapshot for the hub, the exported model, the memory footprint and its limit, and
// the end's summary.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cstdio>

#include "common/error.h"
#include "common/fs.h"
#include "common/json.h"
#include "common/log.h"
#include "model/backward_gate.h"
#include "model/compat.h"
#include "model/tensor_io.h"
#include "party/trainer.h"
#include "party/wire.h"
#include "train/checkpoint.h"

namespace pcmoe::party {

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

namespace {

// "a=600,b=600,c=412": each host's experts' step in the pool; `stale`: hosts older than the newest.
std::string expert_ages(const proto::Pool& pool, const std::vector<std::string>& host_ids,
                        JsonObject& by_host, std::vector<std::string>& stale) {
  std::vector<std::string> parts;
  uint64_t newest = 0;
  for (uint64_t s : pool.party_steps) newest = std::max(newest, s);
  for (size_t i = 0; i < pool.party_steps.size(); ++i) {
    const std::string id = i < host_ids.size() ? host_ids[i] : std::to_string(i);
    parts.push_back(fmt::format("{}={}", id, pool.party_steps[i]));
    by_host.add(id, pool.party_steps[i]);
    if (pool.party_steps[i] < newest) stale.push_back(id);
  }
  return fmt::format("{}", fmt::join(parts, ","));
}

}  // namespace

int PartyTrainer::load_hosted_experts(const proto::Pool& pool) {
  std::map<std::string, const proto::WireTensor*> by_name;
  for (size_t i = 0; i < pool.names.size() && i < pool.tensors.size(); ++i)
    by_name[pool.names[i]] = &pool.tensors[i];
  torch::NoGradGuard no_grad;
  std::unique_lock<std::shared_mutex> write(shard_mu_);
  int loaded = 0;
  for (auto& [name, p] : shard_->named_expert_params()) {
    auto it = by_name.find(name);
    PCMOE_CHECK_T(DataError, it != by_name.end(), "the expert pool (step {}) has no tensor '{}'", pool.step,
                  name);
    auto t = from_wire(*it->second, torch::kCPU, torch::kFloat32);
    PCMOE_CHECK_T(DataError, t.sizes() == p.sizes(), "pool tensor '{}' has shape {}, expected {}", name,
                  model::shape_str(t), model::shape_str(p));
    p.copy_(t.to(p.device()));
    ++loaded;
  }
  return loaded;
}

void PartyTrainer::export_model(const std::string& path, const proto::Pool& pool,
                                const std::vector<std::string>& host_ids) {
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
  JsonObject by_host;
  std::vector<std::string> stale;
  const std::string ages = expert_ages(pool, host_ids, by_host, stale);
  train::export_model(path, cfg_.model, backbone_, all,
                      {{"step", std::to_string(last_step_ + 1)},
                       {"party", cfg_.party.id},
                       {"pool_step", std::to_string(pool.step)},
                       {"expert_steps", ages},
                       {"source", "pcmoe-party"}});
  PCMOE_INFO("party.exported")
      .kv("path", path)
      .kv("pool_step", pool.step)
      .kv("pool_tensors", from_pool)
      .kv("expert_steps", by_host)
      .kv("older_experts", stale);
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
  in.concurrent = concurrent_;
  return model::estimate_footprint(cfg_.model, cfg_.train, in);
}

void PartyTrainer::log_footprint(uint64_t limit_bytes) const {
  const model::Footprint fp = footprint();
  PCMOE_INFO("party.footprint")
      .kv("total_bytes", fp.total())
      .kv("minimum_bytes", fp.minimum())
      .kv("backbone_state_bytes", fp.backbone_state)
      .kv("expert_state_bytes", fp.expert_state)
      .kv("activations_bytes", fp.activations)
      .kv("remote_stash_bytes", fp.remote_stash)
      .kv("limit_bytes", limit_bytes);
  std::fprintf(stderr, "pcmoe-party %s: memory footprint estimate\n%s\n", cfg_.party.id.c_str(),
               fp.table().c_str());
}

void PartyTrainer::log_done(double eval_loss, double eval_bpb, const std::string& model) {
  const auto mem = model::peak_memory(device_);
  const DispatchStats& ds = dispatcher_->stats();
  const HostStats hs = host_->stats();
  PCMOE_INFO("party.done")
      .kv("steps_done", steps_done_)
      .kv("eval_loss", eval_loss)
      .kv("eval_bpb", eval_bpb)
      .kv("model", model)
      .kv("peak_memory_bytes", mem.allocated_bytes)
      .kv("peak_reserved_bytes", mem.reserved_bytes)
      .kv("remote_requests", ds.requests)
      .kv("rows_sent", ds.rows_sent)
      .kv("remote_wait_ms", ds.wait_ms())
      .kv("serialize_ms", ds.serialize_ms())
      .kv("busy_retries", ds.busy_retries)
      .kv("host_requests", hs.requests)
      .kv("host_compute_ms", hs.compute_ms)
      .kv("host_recomputed", hs.recomputed)
      .kv("host_busy", hs.busy)
      // Hosted backward passes run by this party's own waiting backward (concurrent rounds) or
      // on the expert service's thread (model/backward_gate.h).
      .kv("host_backward_on_trainer", model::BackwardGate::instance().served())
      .kv("host_backward_alone", model::BackwardGate::instance().ran_alone())
      .kv("bytes_sent", dispatcher_->bytes_sent())
      .kv("bytes_received", dispatcher_->bytes_received());
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
  // What the host may keep for other parties' backward: the limit minus the state (sequential:
  // its own step never overlaps with hosting; concurrent rounds: minus its own step too).
  uint64_t fixed = f.backbone_state + f.expert_state + f.weight_casts + f.host_gradients;
  if (f.concurrent_requesters > 0) {
    fixed += std::max(f.activations + f.backward_peak, f.gradients + f.last_layer_activations);
  }
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
