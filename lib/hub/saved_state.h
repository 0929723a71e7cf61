// Owns reading back <hub.out_dir>/hub_state.json (written by HubState::state_json) so that a
// restarted hub continues the run it belongs to (hub.resume): the global step, the turn schedule,
// the running global expert load, the snapshot counter and the per-party totals. Parsed with
// yaml-cpp (JSON is YAML); a file that does not parse or lacks a field throws ConfigError naming
// the file and the field. Thread-compatible; no sockets, no clock.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "hub/registry.h"

namespace pcmoe::hub {

struct SavedPartyTotals {
  std::string id;
  PartyTotals totals;  // tokens_per_s is not saved (0)
};

struct SavedHubState {
  std::string path;  // where it was read from (for messages)
  std::string run_id;
  std::string state;  // Status.state at save time ("training", "finished", ...)
  std::string saved_at;
  int64_t step = 0;
  int64_t total_steps = 0;
  std::string model_hash;
  uint64_t seed = 0;
  int64_t steps_per_turn = 1;
  uint64_t round = 0;
  uint64_t turn_index = 0;  // picks made in `round`
  uint64_t turns_issued = 0;
  std::vector<uint32_t> round_order;
  int64_t pool_step = -1;
  uint64_t snapshot_id = 0;
  uint64_t load_steps = 0;
  std::vector<std::vector<uint64_t>> load_running_counts;
  std::vector<SavedPartyTotals> parties;
};

// nullopt if `path` does not exist; throws ConfigError if it exists but cannot be used.
std::optional<SavedHubState> read_saved_hub_state(const std::string& path);

}  // namespace pcmoe::hub
