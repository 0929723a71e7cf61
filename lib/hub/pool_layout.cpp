// Expert-pool names, shapes, placement and snapshot validation (see pool_layout.h).
#include "hub/pool_layout.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <set>

#include "proto/wire_tensor.h"

namespace pcmoe::hub {
namespace {

// A canonical non-negative decimal (no sign, no leading zero unless "0"), at most 9 digits.
std::optional<int> parse_index(std::string_view s) {
  if (s.empty() || s.size() > 9) return std::nullopt;
  if (s.size() > 1 && s[0] == '0') return std::nullopt;
  int v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  return v;
}

std::string shape_text(const std::vector<int64_t>& shape) {
  return fmt::format("[{}]", fmt::join(shape, ","));
}

}  // namespace

std::optional<ExpertParam> parse_expert_param(std::string_view name) {
  // l<layer>.e<expert>.<param>
  if (name.size() < 7 || name[0] != 'l') return std::nullopt;
  size_t dot1 = name.find('.');
  if (dot1 == std::string_view::npos || dot1 + 1 >= name.size() || name[dot1 + 1] != 'e') return std::nullopt;
  size_t dot2 = name.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos) return std::nullopt;
  auto layer = parse_index(name.substr(1, dot1 - 1));
  auto expert = parse_index(name.substr(dot1 + 2, dot2 - dot1 - 2));
  std::string_view param = name.substr(dot2 + 1);
  if (!layer || !expert || (param != "w1" && param != "w2" && param != "w3")) return std::nullopt;
  return ExpertParam{*layer, *expert, std::string(param)};
}

std::string expert_param_name(int layer, int expert, std::string_view param) {
  return fmt::format("l{}.e{}.{}", layer, expert, param);
}

PoolLayout::PoolLayout(const ModelConfig& model, uint32_t n_parties)
    : n_experts_(static_cast<uint32_t>(std::max(0, model.n_experts))),
      n_parties_(std::max<uint32_t>(1, n_parties)),
      d_model_(model.d_model),
      d_ff_(model.d_ff) {
  for (int l : model.moe_layer_indices()) moe_layers_.push_back(static_cast<uint32_t>(l));
  params_ = model.activation == "swiglu" ? std::vector<std::string>{"w1", "w2", "w3"}
                                         : std::vector<std::string>{"w1", "w2"};
}

std::vector<std::vector<uint32_t>> PoolLayout::placement() const {
  std::vector<std::vector<uint32_t>> out;
  for (size_t i = 0; i < moe_layers_.size(); ++i) {
    std::vector<uint32_t> row(n_experts_);
    for (uint32_t e = 0; e < n_experts_; ++e) row[e] = host_of(static_cast<int>(e));
    out.push_back(std::move(row));
  }
  return out;
}

std::vector<std::string> PoolLayout::names_of(uint32_t party) const {
  std::vector<std::string> out;
  for (uint32_t l : moe_layers_) {
    for (uint32_t e = 0; e < n_experts_; ++e) {
      if (host_of(static_cast<int>(e)) != party) continue;
      for (const auto& p : params_)
        out.push_back(expert_param_name(static_cast<int>(l), static_cast<int>(e), p));
    }
  }
  return out;
}

size_t PoolLayout::pool_size() const { return moe_layers_.size() * n_experts_ * params_.size(); }

std::vector<int64_t> PoolLayout::shape_of(const std::string& param) const {
  return param == "w2" ? std::vector<int64_t>{d_model_, d_ff_} : std::vector<int64_t>{d_ff_, d_model_};
}

bool PoolLayout::is_moe_layer(int layer) const {
  return std::find(moe_layers_.begin(), moe_layers_.end(), static_cast<uint32_t>(layer)) != moe_layers_.end();
}

std::optional<SnapshotProblem> PoolLayout::check(uint32_t party, const proto::Snapshot& s) const {
  using proto::ErrorCode;
  if (s.names.size() != s.tensors.size()) {
    return SnapshotProblem{ErrorCode::bad_field,
                           fmt::format("{} names for {} tensors", s.names.size(), s.tensors.size())};
  }
  std::set<std::string> seen;
  for (size_t i = 0; i < s.names.size(); ++i) {
    const std::string& name = s.names[i];
    auto p = parse_expert_param(name);
    bool known_param = p && (std::find(params_.begin(), params_.end(), p->param) != params_.end());
    if (!p || !known_param || !is_moe_layer(p->layer) || p->expert >= static_cast<int>(n_experts_)) {
      return SnapshotProblem{ErrorCode::bad_field,
                             fmt::format("tensor '{}' is not an expert parameter of this model (expected "
                                         "l<moe layer>.e<expert < {}>.<{}>); the hub only keeps experts",
                                         name.substr(0, 64), n_experts_, fmt::join(params_, "|"))};
    }
    if (host_of(p->expert) != party) {
      return SnapshotProblem{ErrorCode::bad_field,
                             fmt::format("tensor '{}' belongs to expert {} hosted by party "
                                         "index {}, not by the sender (index {})",
                                         name, p->expert, host_of(p->expert), party)};
    }
    if (!seen.insert(name).second) {
      return SnapshotProblem{ErrorCode::bad_field, fmt::format("tensor '{}' appears twice", name)};
    }
    const auto& t = s.tensors[i];
    if (t.shape != shape_of(p->param)) {
      return SnapshotProblem{ErrorCode::bad_shape,
                             fmt::format("tensor '{}' has shape {}, expected {}", name, shape_text(t.shape),
                                         shape_text(shape_of(p->param)))};
    }
    if (!dtype_is_float(t.dtype)) {
      return SnapshotProblem{ErrorCode::bad_dtype, fmt::format("tensor '{}' is {}, expected a float type",
                                                               name, proto::describe_tensor(t))};
    }
  }
  for (const auto& want : names_of(party)) {
    if (!seen.count(want)) {
      return SnapshotProblem{ErrorCode::bad_field,
                             fmt::format("snapshot lacks '{}' ({} of {} expected tensors present)", want,
                                         seen.size(), names_of(party).size())};
    }
  }
  return std::nullopt;
}

}  // namespace pcmoe::hub
