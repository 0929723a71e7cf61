// Owns expert-pool snapshots: one snapshot round at a time (which live parties were asked, whose
// validated Snapshot arrived) and the latest complete pool assembled from a round — each live
// party's experts from its snapshot, a lost party's experts from the previous pool (with their
// older step: the pool records each party's step, meta "party_steps" = "600,600,412") — kept in
// memory as a tensor file (common/tensor_file.h) and served as a Pool message.
// Not thread-safe: owned by HubState. The pool is immutable once built (shared, never copied).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/tensor_file.h"
#include "hub/pool_layout.h"
#include "hub/types.h"
#include "proto/messages.h"

namespace pcmoe::hub {

class SnapshotRound {
 public:
  SnapshotRound(uint64_t id, const std::vector<uint32_t>& parties, TimePoint started, bool final_round);

  uint64_t id() const { return id_; }
  bool final_round() const { return final_; }
  TimePoint started() const { return started_; }
  bool expects(uint32_t party) const { return pending_.count(party) > 0; }
  const std::set<uint32_t>& pending() const { return pending_; }
  // A validated snapshot of `party` (which must be pending).
  void accept(uint32_t party, proto::Snapshot s);
  // `party` was lost: stop waiting for it.
  void drop(uint32_t party) { pending_.erase(party); }
  bool complete() const { return pending_.empty(); }
  const std::map<uint32_t, proto::Snapshot>& received() const { return received_; }

 private:
  uint64_t id_;
  bool final_;
  TimePoint started_;
  std::set<uint32_t> pending_;
  std::map<uint32_t, proto::Snapshot> received_;
};

class ExpertPool {
 public:
  explicit ExpertPool(const PoolLayout& layout) : layout_(layout) {}

  bool empty() const { return file_ == nullptr; }
  int64_t step() const { return step_; }  // -1 if none
  // Per party index: the step of that party's experts in the pool (its snapshot's, or the older
  // step carried from an earlier pool for a party lost before it answered); empty if none.
  const std::vector<int64_t>& party_steps() const { return party_steps_; }
  const std::shared_ptr<const TensorFile>& file() const { return file_; }

  // Builds a complete pool from `round` (and the previous pool for parties missing from it) with
  // `meta` added (step and created are set here). Returns "" on success (the pool is replaced),
  // else which experts are missing (the previous pool stays).
  std::string assemble(const SnapshotRound& round, std::map<std::string, std::string> meta,
                       const std::vector<std::string>& party_ids);
  // A restarted hub: the pool it wrote before (pool.pcmoe). Returns "" when `file` is a complete
  // pool of this layout (every expert parameter once, the model's shapes, float, a "step" in its
  // meta; nothing else), which then becomes the pool; else why not (the pool stays empty).
  std::string restore(std::shared_ptr<const TensorFile> file);
  // The pool as a message (tensors share the pool's bytes); step -1 and empty if none.
  proto::Pool message() const;

 private:
  const PoolLayout& layout_;
  std::shared_ptr<const TensorFile> file_;
  int64_t step_ = -1;
  std::vector<int64_t> party_steps_;
};

}  // namespace pcmoe::hub
