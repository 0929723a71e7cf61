// Owns rate limiting of the hub's per-peer warning lines (hub.bad_message, hub.party_rejected,
// ...): at most `per_peer` lines per peer and `overall` lines in all per one-second window, so a
// fuzzer or a broken peer cannot flood the log. What is held back is counted and reported once
// the peer's window ends as one `hub.bad_message_suppressed` line {peer, count}.
// Not thread-safe: owned by HubState. Bounded memory: at most `max_peers` peers are tracked.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>

#include "hub/types.h"

namespace pcmoe::hub {

class LogLimiter {
 public:
  explicit LogLimiter(uint32_t per_peer = 10, uint32_t overall = 50, size_t max_peers = 4096);

  // True if a line about `peer` may be written now (then it counts against the budgets).
  bool allow(const std::string& peer, TimePoint now);
  // Writes the suppressed-count lines of windows that ended before `now` and forgets idle peers.
  void flush(TimePoint now);

  uint64_t allowed_total() const { return allowed_total_; }
  uint64_t suppressed_total() const { return suppressed_total_; }

 private:
  struct Window {
    TimePoint start{};
    uint32_t lines = 0;
    uint64_t suppressed = 0;
  };
  void close_window(const std::string& peer, Window& w);

  uint32_t per_peer_, overall_;
  size_t max_peers_;
  std::unordered_map<std::string, Window> peers_;
  Window global_;
  uint64_t allowed_total_ = 0, suppressed_total_ = 0;
};

// A routing id as printable text: hex of its bytes (libzmq's generated ids are binary).
std::string peer_label(const std::string& peer);

}  // namespace pcmoe::hub
