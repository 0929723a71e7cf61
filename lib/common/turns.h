// Owns the turn schedule of a federation: randomised round-robin (each round a seeded random
// permutation of the live parties, as in the PC-MoE paper). Shared by the hub and by
// pcmoe-central's protocol mode, so both produce the same order from the same seed.
#pragma once

#include <cstdint>
#include <vector>

namespace pcmoe {

// The order of party indices in round `round` over `live` (sorted indices of live parties).
std::vector<uint32_t> round_order(uint64_t seed, uint64_t round, const std::vector<uint32_t>& live);

// Walks the schedule: which party takes global step `step` when every party is live and each
// turn has `steps_per_turn` steps.
class TurnSchedule {
 public:
  TurnSchedule(uint64_t seed, uint32_t n_parties, uint32_t steps_per_turn);
  uint32_t party_at(int64_t step) const;

 private:
  uint64_t seed_;
  uint32_t n_;
  uint32_t steps_per_turn_;
};

}  // namespace pcmoe
