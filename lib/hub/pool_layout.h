// Owns what the shared expert pool consists of: the expert-parameter names
// ("l<layer>.e<expert>.<w1|w2|w3>", layer a MoE layer index, expert < n_experts; w3 only with
// SwiGLU), their shapes (w1/w3: [d_ff, d_model], w2: [d_model, d_ff]), the placement (expert e of
// every MoE layer lives on party e mod n) and the check of one party's Snapshot against all that.
// This check is what keeps the hub from ever holding anything but expert parameters: a backbone
// name, another host's expert, a wrong shape or a duplicate is refused. Immutable; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/model_config.h"
#include "proto/messages.h"

namespace pcmoe::hub {

struct ExpertParam {
  int layer = 0;
  int expert = 0;
  std::string param;  // "w1" | "w2" | "w3"
};

// Parses the canonical form only ("l1.e5.w1": decimal, no sign, no leading zeros); else nullopt.
std::optional<ExpertParam> parse_expert_param(std::string_view name);
std::string expert_param_name(int layer, int expert, std::string_view param);

// Why a snapshot was refused: the error code of the reply and a reason naming the tensor.
struct SnapshotProblem {
  proto::ErrorCode code = proto::ErrorCode::bad_field;
  std::string reason;
};

class PoolLayout {
 public:
  PoolLayout(const ModelConfig& model, uint32_t n_parties);

  const std::vector<uint32_t>& moe_layers() const { return moe_layers_; }
  uint32_t n_experts() const { return n_experts_; }
  uint32_t n_parties() const { return n_parties_; }
  uint32_t host_of(int expert) const { return static_cast<uint32_t>(expert) % n_parties_; }
  // placement[i][e]: index of the party hosting expert e of MoE layer moe_layers()[i].
  std::vector<std::vector<uint32_t>> placement() const;

  // Names hosted by `party`, in pool order (layer, expert, w1 w2 w3).
  std::vector<std::string> names_of(uint32_t party) const;
  size_t pool_size() const;  // number of tensors of a complete pool
  std::vector<int64_t> shape_of(const std::string& param) const;

  // nullopt if `s` is exactly the experts `party` hosts, each once, with the model's shapes.
  std::optional<SnapshotProblem> check(uint32_t party, const proto::Snapshot& s) const;

 private:
  bool is_moe_layer(int layer) const;

  std::vector<uint32_t> moe_layers_;
  uint32_t n_experts_;
  uint32_t n_parties_;
  int64_t d_model_, d_ff_;
  std::vector<std::string> params_;
};

}  // namespace pcmoe::hub
