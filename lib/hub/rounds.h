// Owns the record of one concurrent round (hub.schedule: concurrent; PROTOCOL.md 9.6): every live
// party trains global step `step` at once; then every live party, as a host, reports the squared
// norm of its experts' accumulated gradients (round_close -> round_norm) and applies or drops them
// (round_commit -> round_commit_ack). Plain data: HubState's hub_rounds.cpp drives it.
#pragma once

#include <cstdint>
#include <map>
#include <set>

#include "hub/types.h"

namespace pcmoe::hub {

struct OpenRound {
  enum class Stage { training, norms, commit };
  int64_t step = 0;
  Stage stage = Stage::training;
  TimePoint opened{};
  TimePoint stage_started{};
  std::map<uint32_t, uint64_t> turn_of;  // participant index -> its turn id
  std::set<uint32_t> reported;           // participants whose step report was accepted
  std::set<uint32_t> done_ok;            // participants whose turn ended ok, report included
  std::set<uint32_t> left_out;           // failed, lost or past the deadline
  std::set<uint32_t> hosts;              // live parties at the close: asked for norms and the commit
  std::map<uint32_t, double> norms;      // host -> squared norm of its experts' round gradients
  std::set<uint32_t> acked;              // hosts that acknowledged the commit
  bool apply = false;
  double scale = 0;  // the factor the hosts apply to their summed gradients
  double norm = 0;   // the global norm of the round's (mean) expert gradient
  std::string why;   // why the round's expert update is dropped ("" when applied)

  bool training_over() const { return done_ok.size() + left_out.size() >= turn_of.size(); }
};

}  // namespace pcmoe::hub
