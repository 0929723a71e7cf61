// Owns the federation's membership: the configured parties (id, index = position in hub.parties,
// configured CURVE key), which connection speaks for each (routing id and authenticated key),
// liveness (when each was last heard from), what each announced in its hello and has reported
// since, and the directory (with its epoch) that parties use to reach each other's experts.
// Not thread-safe: owned by HubState. Never throws for input (callers validate first).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/hub_config.h"
#include "hub/loss_history.h"
#include "hub/step_times.h"
#include "hub/types.h"
#include "proto/messages.h"

namespace pcmoe::hub {

// What a party's step reports added up to (PartyStatus fields).
struct PartyTotals {
  int64_t steps_done = 0;
  uint64_t tokens = 0;
  double last_loss = -1;
  double last_eval_loss = -1;
  double tokens_per_s = 0;
  uint64_t peak_memory_bytes = 0;
  uint64_t bytes_sent = 0;  // sums of the per-step byte counts of its reports
  uint64_t bytes_received = 0;
};

struct PartyRecord {
  // ---- from hub.parties ----
  std::string id;
  uint32_t index = 0;
  std::string config_key;  // Z85 public key ("" when CURVE is off)
  // ---- the connection that speaks for it ----
  std::string peer;       // ROUTER routing id of its DEALER; kept after loss (to explain errors)
  std::string curve_key;  // authenticated key of that connection ("" without CURVE)
  uint64_t session = 0;   // token of its registration (welcome.sess): a hello with it is the same process
  bool alive = false;
  bool ever_joined = false;
  uint64_t joins = 0;
  TimePoint last_seen{};
  // ---- from its hello and heartbeats ----
  std::string endpoint;   // its expert service
  std::string hello_key;  // the expert-service key it announced
  uint64_t memory_budget_bytes = 0;
  int64_t resume_step = 0;
  std::string state = "absent";  // last heartbeat state ("absent", "lost" set by the hub)
  // ---- end of run ----
  bool said_bye = false;
  PartyTotals totals;
  StepTimes step_times;  // its recent steps (this hub process only: not saved)
  LossHistory losses;    // its recent training and held-out losses (not saved either)
};

class Registry {
 public:
  explicit Registry(const std::vector<HubPartyEntry>& parties);

  size_t size() const { return parties_.size(); }
  const std::vector<PartyRecord>& parties() const { return parties_; }
  PartyRecord& at(uint32_t index) { return parties_.at(index); }
  const PartyRecord& at(uint32_t index) const { return parties_.at(index); }

  PartyRecord* find_id(const std::string& id);
  const PartyRecord* find_id(const std::string& id) const;
  // The live party this connection speaks for, or nullptr.
  PartyRecord* find_alive_peer(const std::string& peer);
  // A lost party whose last connection was `peer`, or nullptr.
  const PartyRecord* find_lost_peer(const std::string& peer) const;

  // Registers `p` on this connection (alive, heard from now) with what its hello announced.
  void join(PartyRecord& p, const std::string& peer, const std::string& curve_key, const proto::Hello& hello,
            TimePoint now);
  // The live party's process now speaks on this connection (same registration, heard from now).
  void move_connection(PartyRecord& p, const std::string& peer, const std::string& curve_key, TimePoint now);
  // Marks `p` lost (its experts become unavailable). Returns false if it was not alive.
  bool mark_lost(PartyRecord& p);
  void touch(PartyRecord& p, TimePoint now) { p.last_seen = now; }

  std::vector<uint32_t> live_indices() const;  // sorted
  size_t live_count() const;
  bool all_alive() const;
  // Live parties not heard from for longer than `timeout` at `now`.
  std::vector<uint32_t> silent(TimePoint now, Millis timeout) const;

  uint64_t epoch() const { return epoch_; }
  void bump_epoch() { ++epoch_; }
  // Every configured party: id, index, endpoint, key (configured, else announced), alive.
  std::vector<proto::PartyEntry> directory() const;
  std::vector<uint8_t> alive_mask() const;
  std::vector<proto::PartyStatus> statuses(TimePoint now) const;

 private:
  std::vector<PartyRecord> parties_;
  uint64_t epoch_ = 0;
};

}  // namespace pcmoe::hub
