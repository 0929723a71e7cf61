// Owns HubView, an immutable copy of what the hub's read-only observers show (the HTTP status
// page, its JSON and /metrics): the status as status_request answers it, plus what the wire Status
// does not carry — each party's recent step times, joins and losses, the hub's message and byte
// counters.
// its recent losses. And StatusBoard, through which the hub's main thread hands the latest HubView to other
// threads: HubState is single-threaded and is never read from them. Thread-safety: HubView is a plain value;
// StatusBoard is thread-safe (a mutex around a pointer to an immutable view: readers keep their copy as long
// as they need it).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "proto/messages.h"

namespace pcmoe::hub {

struct PartyTiming {
  double step_ms_last = -1;  // its last reported step (-1: none since this hub process started)
  double step_ms_mean = -1;  // mean over its recent steps (StepTimes::kWindow)
  uint64_t joins = 0;        // registrations (2 or more: it rejoined)
  // {global step, loss} of its recent steps and held-out evaluations (LossHistory), oldest first.
  std::vector<std::vector<double>> recent_loss, recent_eval_loss;
};

struct HubView {
  proto::Status status;             // with the global expert load
  std::vector<PartyTiming> timing;  // by party index (the order of status.parties)
  std::string model_hash;
  uint64_t msgs_in = 0, msgs_out = 0, bad_messages = 0;
  uint64_t bytes_in = 0, bytes_out = 0, send_failures = 0;
  std::string published_at;  // UTC timestamp of the copy
};

class StatusBoard {
 public:
  void publish(std::shared_ptr<const HubView> view) {
    std::lock_guard<std::mutex> lock(mu_);
    view_ = std::move(view);
  }
  // The latest view, or nullptr before the first publish.
  std::shared_ptr<const HubView> latest() const {
    std::lock_guard<std::mutex> lock(mu_);
    return view_;
  }

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const HubView> view_;
};

}  // namespace pcmoe::hub
