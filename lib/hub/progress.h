// Owns the one-line live progress of a federation, as `pcmoe-ctl watch` (and with it
// scripts/run-federation.sh) prints it from successive hub statuses:
//   step 123/600 | a 2.134  b 2.345  c LOST | 1234 tok/s | ETA 3m10s | training | up 2m03s
// - tok/s and the ETA come from a sliding window of recent statuses taken while training (not an
//   average since the start); the window restarts after a pause or a stall in the hub's answers;
// - while paused, the ETA is the last one computed before the pause, marked "(paused)";
// - each party shows its last training loss, or LOST (the hub marked it lost), absent (never
//   joined), rejoined (lost earlier, back, no step since), done (said bye at the end);
// - line(width) fits the line into width-1 columns (never wraps an 80-column terminal), dropping
//   the least important parts first.
// Not thread-safe; a value type. Times are seconds on any steady clock.
#pragma once

#include <deque>
#include <set>
#include <string>
#include <vector>

#include "proto/messages.h"

namespace pcmoe::hub {

class ProgressMeter {
 public:
  explicit ProgressMeter(double window_s = 20) : window_s_(window_s) {}

  void add(const proto::Status& s, double t_s);
  // The hub did not answer at t_s.
  void no_answer(double t_s);
  // "" before the first status.
  std::string line(size_t width) const;

  double tokens_per_s() const;  // over the window; 0 when paused or unknown
  double eta_s() const;         // -1 when unknown
  bool finished() const { return has_status_ && last_.state == "finished"; }

  static std::string duration(double s);  // 190 -> "3m10s", 3700 -> "1h01m", 42 -> "42s"

 private:
  struct Sample {
    double t_s;
    uint64_t tokens;
    int64_t step;
  };
  std::string party_text(const proto::PartyStatus& p, int decimals) const;
  std::string build(int decimals, bool with_tok, bool with_eta, bool with_up, bool with_parties) const;

  double window_s_;
  std::deque<Sample> window_;
  proto::Status last_;
  bool has_status_ = false;
  double frozen_eta_s_ = -1;
  double silent_since_s_ = -1;  // first unanswered request since the last answer (-1: answering)
  double last_t_s_ = 0;
  std::set<std::string> seen_lost_;       // parties seen lost by this meter
  std::set<std::string> rejoined_;        // back after being lost, no step since
  std::vector<int64_t> steps_at_rejoin_;  // by party index
};

}  // namespace pcmoe::hub
