// Owns small text helpers of the hub: clipping peer-supplied strings before they reach a log line
// or a reply, and human units for pcmoe-ctl. Header-only; stateless.
#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace pcmoe::hub {

// At most `max_bytes` of `s` (peer-supplied text must not bloat logs), "..." appended if cut.
inline std::string clip(std::string_view s, size_t max_bytes = 64) {
  if (s.size() <= max_bytes) return std::string(s);
  return std::string(s.substr(0, max_bytes)) + "...";
}

// 1536 -> "1.5 KiB"; below 1 KiB in bytes ("512 B").
inline std::string human_bytes(uint64_t n) {
  static const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1024 && u < 5) {
    v /= 1024;
    ++u;
  }
  return u == 0 ? fmt::format("{} B", n) : fmt::format("{:.1f} {}", v, kUnits[u]);
}

}  // namespace pcmoe::hub
