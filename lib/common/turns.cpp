// Randomised round-robin turn order (see turns.h).
#include "common/turns.h"

#include "common/hash.h"

namespace pcmoe {

std::vector<uint32_t> round_order(uint64_t seed, uint64_t round, const std::vector<uint32_t>& live) {
  std::vector<uint32_t> order = live;
  Rng rng(mix_seed(seed, round));
  rng.shuffle(order);
  return order;
}

TurnSchedule::TurnSchedule(uint64_t seed, uint32_t n_parties, uint32_t steps_per_turn)
    : seed_(seed), n_(n_parties), steps_per_turn_(steps_per_turn) {}

uint32_t TurnSchedule::party_at(int64_t step) const {
  const uint64_t turn = static_cast<uint64_t>(step) / steps_per_turn_;
  const uint64_t round = turn / n_;
  std::vector<uint32_t> live(n_);
  for (uint32_t i = 0; i < n_; ++i) live[i] = i;
  return round_order(seed_, round, live)[turn % n_];
}

}  // namespace pcmoe
