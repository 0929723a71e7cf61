// Per-peer log rate limiting (see log_limiter.h).
#include "hub/log_limiter.h"

#include "common/log.h"

namespace pcmoe::hub {
namespace {
constexpr auto kWindow = std::chrono::seconds(1);
}

LogLimiter::LogLimiter(uint32_t per_peer, uint32_t overall, size_t max_peers)
    : per_peer_(per_peer), overall_(overall), max_peers_(max_peers) {}

void LogLimiter::close_window(const std::string& peer, Window& w) {
  if (w.suppressed > 0) {
    PCMOE_WARN("hub.bad_message_suppressed").kv("peer", peer_label(peer)).kv("count", w.suppressed);
  }
  w = Window{};
}

bool LogLimiter::allow(const std::string& peer, TimePoint now) {
  if (now - global_.start >= kWindow) {
    global_.start = now;
    global_.lines = 0;
  }
  auto it = peers_.find(peer);
  if (it == peers_.end()) {
    if (peers_.size() >= max_peers_) flush(now);
    if (peers_.size() >= max_peers_) {  // still full: count it against the global window only
      ++suppressed_total_;
      return false;
    }
    it = peers_.emplace(peer, Window{now, 0, 0}).first;
  }
  Window& w = it->second;
  if (now - w.start >= kWindow) {
    close_window(peer, w);
    w.start = now;
  }
  if (w.lines >= per_peer_ || global_.lines >= overall_) {
    ++w.suppressed;
    ++suppressed_total_;
    return false;
  }
  ++w.lines;
  ++global_.lines;
  ++allowed_total_;
  return true;
}

void LogLimiter::flush(TimePoint now) {
  for (auto it = peers_.begin(); it != peers_.end();) {
    if (now - it->second.start >= kWindow) {
      close_window(it->first, it->second);
      it = peers_.erase(it);
    } else {
      ++it;
    }
  }
}

std::string peer_label(const std::string& peer) {
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < peer.size() && i < 32; ++i) {
    auto c = static_cast<unsigned char>(peer[i]);
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

}  // namespace pcmoe::hub
