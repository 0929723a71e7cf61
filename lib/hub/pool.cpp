// Snapshot rounds and the assembled expert pool (see pool.h).
#include "hub/pool.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <string_view>
#include <unordered_map>

#include "common/log.h"
#include "proto/wire_tensor.h"

namespace pcmoe::hub {

SnapshotRound::SnapshotRound(uint64_t id, const std::vector<uint32_t>& parties, TimePoint started,
                             bool final_round)
    : id_(id), final_(final_round), started_(started), pending_(parties.begin(), parties.end()) {}

void SnapshotRound::accept(uint32_t party, proto::Snapshot s) {
  pending_.erase(party);
  received_[party] = std::move(s);
}

std::string ExpertPool::assemble(const SnapshotRound& round, std::map<std::string, std::string> meta,
                                 const std::vector<std::string>& party_ids) {
  auto out = std::make_shared<TensorFile>();
  int64_t step = INT64_MAX;
  std::vector<std::string> missing;
  std::vector<int64_t> party_steps(layout_.n_parties(), 0);
  for (uint32_t p = 0; p < layout_.n_parties(); ++p) {
    auto got = round.received().find(p);
    std::vector<std::string> names = layout_.names_of(p);
    if (got != round.received().end()) {
      const proto::Snapshot& s = got->second;
      step = std::min(step, s.step);
      party_steps[p] = s.step;
      std::unordered_map<std::string_view, size_t> at;  // the snapshot was validated: every name is there
      for (size_t i = 0; i < s.names.size(); ++i) at.emplace(s.names[i], i);
      for (const auto& name : names) {
        const proto::WireTensor& t = s.tensors.at(at.at(name));
        RawTensor r;
        r.name = name;
        r.dtype = t.dtype;
        r.shape = t.shape;
        r.bytes.assign(reinterpret_cast<const char*>(t.data.data), t.data.size);
        out->tensors.push_back(std::move(r));
      }
    } else if (file_ != nullptr && !names.empty()) {
      // A party lost before answering: its experts as of the previous pool.
      const int64_t old = p < party_steps_.size() ? party_steps_[p] : step_;
      step = std::min(step, old);
      party_steps[p] = old;
      for (const auto& name : names) {
        const RawTensor* r = file_->find(name);
        if (r == nullptr) {
          missing.push_back(p < party_ids.size() ? party_ids[p] : std::to_string(p));
          break;
        }
        out->tensors.push_back(*r);
      }
    } else if (!names.empty()) {
      missing.push_back(p < party_ids.size() ? party_ids[p] : std::to_string(p));
    }
  }
  if (!missing.empty()) {
    return fmt::format("no snapshot and no earlier pool for the experts of {}", fmt::join(missing, ", "));
  }
  if (step == INT64_MAX) step = 0;  // a model without experts: nothing to wait for
  meta["step"] = std::to_string(step);
  meta["created"] = log::utc_timestamp();
  meta["kind"] = "expert_pool";
  meta["snapshot_id"] = std::to_string(round.id());
  meta["party_steps"] = fmt::format("{}", fmt::join(party_steps, ","));
  out->meta = std::move(meta);
  file_ = std::move(out);
  step_ = step;
  party_steps_ = std::move(party_steps);
  return "";
}

std::string ExpertPool::restore(std::shared_ptr<const TensorFile> file) {
  if (file == nullptr) return "no pool file";
  auto meta_step = file->meta.find("step");
  if (meta_step == file->meta.end()) return "no 'step' in its metadata";
  int64_t step = -1;
  try {
    step = std::stoll(meta_step->second);
  } catch (const std::exception&) {
    return fmt::format("its step '{}' is not a number", meta_step->second);
  }
  if (step < 0) return fmt::format("its step {} is negative", step);
  if (file->tensors.size() != layout_.pool_size()) {
    return fmt::format("{} tensors, a complete pool has {}", file->tensors.size(), layout_.pool_size());
  }
  for (uint32_t p = 0; p < layout_.n_parties(); ++p) {
    for (const auto& name : layout_.names_of(p)) {
      const RawTensor* t = file->find(name);
      if (t == nullptr) return fmt::format("tensor '{}' is missing", name);
      const auto param = parse_expert_param(name);
      if (!param || t->shape != layout_.shape_of(param->param)) {
        return fmt::format("tensor '{}' does not have the model's shape", name);
      }
      if (!dtype_is_float(t->dtype)) return fmt::format("tensor '{}' is not a float tensor", name);
      if (t->bytes.size() != static_cast<size_t>(t->numel()) * dtype_size(t->dtype)) {
        return fmt::format("tensor '{}' has {} bytes, its shape needs {}", name, t->bytes.size(),
                           static_cast<size_t>(t->numel()) * dtype_size(t->dtype));
      }
    }
  }
  // Each party's step (older pools have none: the pool's step for all).
  std::vector<int64_t> party_steps(layout_.n_parties(), step);
  if (auto ps = file->meta.find("party_steps"); ps != file->meta.end()) {
    size_t at = 0;
    for (uint32_t p = 0; p < layout_.n_parties() && at <= ps->second.size(); ++p) {
      const size_t comma = std::min(ps->second.find(',', at), ps->second.size());
      try {
        party_steps[p] = std::stoll(ps->second.substr(at, comma - at));
      } catch (const std::exception&) {
        return fmt::format("its party_steps '{}' are not numbers", ps->second);
      }
      at = comma + 1;
    }
  }
  file_ = std::move(file);
  step_ = step;
  party_steps_ = std::move(party_steps);
  return "";
}

proto::Pool ExpertPool::message() const {
  proto::Pool m;
  if (file_ == nullptr) return m;
  m.step = step_;
  for (int64_t s : party_steps_) m.party_steps.push_back(static_cast<uint64_t>(std::max<int64_t>(0, s)));
  for (const auto& t : file_->tensors) {
    m.names.push_back(t.name);
    // The bytes stay owned by the immutable pool; the message only references them.
    m.tensors.push_back(proto::wrap_tensor(t.dtype, t.shape, file_, t.bytes.data(), t.bytes.size()));
  }
  return m;
}

}  // namespace pcmoe::hub
