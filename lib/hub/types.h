// Owns the small vocabulary shared by the hub's parts: the clock they are driven by and the
// Outgoing message a state transition produces (who to send it to, what). No sockets here:
// HubState returns Outgoing values and HubServer sends them.
#pragma once

#include <chrono>
#include <string>

#include "proto/messages.h"

namespace pcmoe::hub {

using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;
using Millis = std::chrono::milliseconds;

// One message for one peer, named by its ROUTER routing id.
struct Outgoing {
  std::string peer;
  proto::Message message;
};

// Milliseconds from `a` to `b` (negative if b is earlier).
inline double ms_between(TimePoint a, TimePoint b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

}  // namespace pcmoe::hub
