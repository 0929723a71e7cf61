// Owns the turn schedule: randomised round-robin over the live parties (each round a seeded
// permutation from common/turns.h round_order, as in the PC-MoE paper), the one outstanding turn,
// and the streak of failed turns that name the same suspect party.
// With every party live and every turn complete, step s is taken by TurnSchedule::party_at(s).
// A party that is lost is skipped for the rest of its round; one that (re)joins enters at the
// next round. Not thread-safe: owned by HubState. No sockets, no clock reads (time is passed in).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "hub/types.h"

namespace pcmoe::hub {

struct ActiveTurn {
  uint64_t turn_id = 0;
  uint32_t party = 0;
  uint64_t round = 0;
  int64_t step_begin = 0;
  uint32_t n_steps = 0;
  uint32_t reports = 0;  // step reports accepted so far
  TimePoint started{};

  int64_t next_step() const { return step_begin + reports; }
};

class TurnScheduler {
 public:
  TurnScheduler(uint64_t seed, uint32_t steps_per_turn);

  struct Pick {
    uint32_t party = 0;
    bool new_round = false;  // a round (order()) began with this pick
  };
  // The next party of the schedule among `live` (sorted indices); nullopt if none is live.
  std::optional<Pick> pick(const std::vector<uint32_t>& live);

  // Starts a turn for `party` at global `step`: min(steps_per_turn, total_steps - step) steps.
  const ActiveTurn& begin(uint32_t party, int64_t step, int64_t total_steps, TimePoint now);
  const std::optional<ActiveTurn>& active() const { return active_; }
  void count_report() { ++active_->reports; }

  // Ends the active turn. For a failed turn naming party `suspect`, returns how many consecutive
  // failed turns have named it (1, 2, ...); 0 otherwise. A successful turn resets the streak.
  uint32_t finish(bool ok, std::optional<uint32_t> suspect);
  // Drops the active turn without judging it (its holder was lost or re-registered).
  void abandon() { active_.reset(); }

  // Moves the schedule on by `picks` picks among `parties` (a resumed hub catching up with steps
  // the parties trained after its saved state), as if those turns had been granted.
  void skip(size_t picks, const std::vector<uint32_t>& parties);
  // A restarted hub continues a saved schedule: `position` picks of `order` made in `round`, turn
  // ids continue after `turns_issued`. An empty order starts the next round at the next pick.
  void restore(uint64_t round, std::vector<uint32_t> order, size_t position, uint64_t turns_issued);

  uint64_t round() const { return round_; }
  size_t position() const { return position_; }  // picks made in the current round
  const std::vector<uint32_t>& order() const { return order_; }
  uint64_t turns_issued() const { return next_turn_id_ - 1; }
  // A turn id for a concurrent round's turn (ids stay unique across both schedules).
  uint64_t issue_turn_id() { return next_turn_id_++; }

 private:
  uint64_t seed_;
  uint32_t steps_per_turn_;
  bool started_ = false;
  uint64_t round_ = 0;
  std::vector<uint32_t> order_;
  size_t position_ = 0;
  uint64_t next_turn_id_ = 1;
  std::optional<ActiveTurn> active_;
  std::optional<uint32_t> streak_party_;
  uint32_t streak_ = 0;
};

}  // namespace pcmoe::hub
