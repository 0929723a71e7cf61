// Owns the experts: one Expert module per (MoE layer, expert id), the ExpertShard that holds the
// experts a process hosts, grouped computation (rows sorted by expert, one matmul chain per
// expert, never a loop over tokens), and the ExpertDispatcher interface through which the MoE
// layer reaches experts — locally (LocalDispatcher) or across parties (lib/party).
// Experts are initialised from (expert_seed, layer, expert), so every process builds any expert
// identically. Parameter names: "l<layer>.e<expert>.<w1|w3|w2>" (also on the wire).
#pragma once

#include <torch/torch.h>

#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "common/model_config.h"

namespace pcmoe::model {

std::string expert_name(int layer, int expert);  // "l1.e5"
// Parses "l1.e5.w1" -> (1, 5, "w1"); false if the name has another form.
bool parse_expert_param(const std::string& name, int& layer, int& expert, std::string& param);

class ExpertImpl : public torch::nn::Module {
 public:
  ExpertImpl(const ModelConfig& cfg, uint64_t expert_seed, int layer, int expert);
  // x: [R, d_model] -> [R, d_model]
  torch::Tensor forward(const torch::Tensor& x);
  const torch::Tensor& w1() const { return w1_; }
  const torch::Tensor& w3() const { return w3_; }
  const torch::Tensor& w2() const { return w2_; }
  bool swiglu() const { return swiglu_; }

 private:
  bool swiglu_;
  torch::Tensor w1_, w3_, w2_;
};
TORCH_MODULE(Expert);

// The experts one process hosts. Thread-safety: none inside; callers serialise parameter updates
// against computation (lib/party holds a shared_mutex around it).
class ExpertShard : public torch::nn::Module {
 public:
  using HostPredicate = std::function<bool(int layer, int expert)>;
  ExpertShard(const ModelConfig& cfg, uint64_t expert_seed, const HostPredicate& hosted);

  bool has(int layer, int expert) const { return experts_.count({layer, expert}) > 0; }
  Expert& get(int layer, int expert);  // throws ModelError if not hosted here
  size_t size() const { return experts_.size(); }
  const std::map<std::pair<int, int>, Expert>& experts() const { return experts_; }

  // Rows in any order: groups them by expert, runs each hosted expert once, returns outputs in
  // the input order. expert_ids: [R] integer tensor, best on the CPU (grouping happens there; ids on
  // the device cost one copy back). Throws ModelError for an expert not hosted or an id out of range.
  torch::Tensor run(int layer, const torch::Tensor& x, const torch::Tensor& expert_ids);
  // Rows already sorted by expert id with counts[e] rows for expert e (e in [0, n_experts)).
  torch::Tensor run_sorted(int layer, const torch::Tensor& x_sorted, const std::vector<int64_t>& counts);

  // The same on CUDA with bf16 autocast: one grouped GEMM per weight for all experts of the
  // layer (libtorch >= 2.8); undefined tensor if the grouped path does not apply.
  torch::Tensor run_grouped(int layer, const torch::Tensor& x_sorted, const std::vector<int64_t>& counts);

  // All expert parameters by wire name ("l1.e5.w1"), sorted.
  std::vector<std::pair<std::string, torch::Tensor>> named_expert_params() const;
  int64_t parameter_count() const;

 private:
  int n_experts_;
  std::map<std::pair<int, int>, Expert> experts_;
};

// How the MoE layer reaches experts. Implementations: LocalDispatcher (all experts in-process),
// lib/party's FederatedDispatcher (remote experts over the network).
class ExpertDispatcher {
 public:
  virtual ~ExpertDispatcher() = default;
  // x_sorted: [R, d] rows sorted by expert id; expert_sorted: [R] their expert ids; counts[e]:
  // rows for expert e (CPU, sums to R). Returns [R, d] outputs in the same order; autograd must
  // flow back to x_sorted.
  virtual torch::Tensor dispatch(int layer, const torch::Tensor& x_sorted, const torch::Tensor& expert_sorted,
                                 const std::vector<int64_t>& counts) = 0;
  // [n_experts] bool on the compute device: experts that may be routed to in `layer`; an
  // undefined tensor means all. Used to mask unavailable experts (top-k over live experts).
  virtual torch::Tensor available_mask(int layer) { return {}; }
  // Audit hooks (privacy audits: pcmoe-party's audit.capture, pcmoe-attack; no-ops otherwise): the
  // input token ids of the forward that follows ([B, T]), and, before each MoE layer's dispatch,
  // the position in the flattened inputs [B*T] of each row of its x_sorted.
  virtual void note_inputs(const torch::Tensor& /*inputs*/) {}
  virtual void note_rows(int /*layer*/, const torch::Tensor& /*positions*/) {}
};

class LocalDispatcher : public ExpertDispatcher {
 public:
  explicit LocalDispatcher(ExpertShard& shard) : shard_(shard) {}
  torch::Tensor dispatch(int layer, const torch::Tensor& x_sorted, const torch::Tensor& expert_sorted,
                         const std::vector<int64_t>& counts) override {
    return shard_.run_sorted(layer, x_sorted, counts);
  }

 private:
  ExpertShard& shard_;
};

}  // namespace pcmoe::model
