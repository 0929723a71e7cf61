// Randomised round-robin turns (see scheduler.h).
#include "hub/scheduler.h"

#include <algorithm>

#include "common/turns.h"

namespace pcmoe::hub {

TurnScheduler::TurnScheduler(uint64_t seed, uint32_t steps_per_turn)
    : seed_(seed), steps_per_turn_(std::max<uint32_t>(1, steps_per_turn)) {}

std::optional<TurnScheduler::Pick> TurnScheduler::pick(const std::vector<uint32_t>& live) {
  if (live.empty()) return std::nullopt;
  Pick p;
  // Rest of the current round first, skipping parties that are no longer live.
  while (started_ && position_ < order_.size()) {
    uint32_t candidate = order_[position_++];
    if (std::binary_search(live.begin(), live.end(), candidate)) {
      p.party = candidate;
      return p;
    }
  }
  if (started_) ++round_;
  started_ = true;
  order_ = round_order(seed_, round_, live);
  position_ = 1;
  p.party = order_[0];
  p.new_round = true;
  return p;
}

const ActiveTurn& TurnScheduler::begin(uint32_t party, int64_t step, int64_t total_steps, TimePoint now) {
  ActiveTurn t;
  t.turn_id = next_turn_id_++;
  t.party = party;
  t.round = round_;
  t.step_begin = step;
  t.n_steps = static_cast<uint32_t>(std::clamp<int64_t>(total_steps - step, 1, steps_per_turn_));
  t.started = now;
  active_ = t;
  return *active_;
}

void TurnScheduler::skip(size_t picks, const std::vector<uint32_t>& parties) {
  for (size_t i = 0; i < picks && pick(parties); ++i) {
  }
}

void TurnScheduler::restore(uint64_t round, std::vector<uint32_t> order, size_t position,
                            uint64_t turns_issued) {
  started_ = true;
  round_ = round;
  position_ = std::min(position, order.size());
  order_ = std::move(order);
  next_turn_id_ = turns_issued + 1;
  active_.reset();
  streak_party_.reset();
  streak_ = 0;
}

uint32_t TurnScheduler::finish(bool ok, std::optional<uint32_t> suspect) {
  active_.reset();
  if (ok || !suspect) {
    streak_party_.reset();
    streak_ = 0;
    return 0;
  }
  if (streak_party_ == suspect) {
    ++streak_;
  } else {
    streak_party_ = suspect;
    streak_ = 1;
  }
  return streak_;
}

}  // namespace pcmoe::hub
