// Owns the structured log: one JSON object per line ({"ts","level","proc","event", fields...}),
// written with a single write(2) per line so concurrent writers never interleave.
// Thread-safe. The level is checked before any formatting (PCMOE_LOG macros).
#pragma once

#include <string>
#include <string_view>

#include "common/json.h"

namespace pcmoe::log {

enum class Level : int { debug = 0, info = 1, warn = 2, error = 3, off = 4 };

struct Options {
  std::string proc = "pcmoe";  // the "proc" field of every line
  Level level = Level::info;
  std::string path;  // append to this file; empty: stderr
};

// Sets up the process-wide logger. Throws ConfigError if the file cannot be opened.
void init(const Options& options);
// init() has been called (the process knows its log: errors from now on go there too).
bool initialized();
// "debug" | "info" | "warn" | "error" | "off"; throws ConfigError naming the bad value.
Level parse_level(std::string_view name);
bool enabled(Level level);
std::string_view level_name(Level level);

// One log line. Fields are added with kv(); the line is written when the object is destroyed.
class Line {
 public:
  Line(Level level, std::string_view event);
  ~Line();
  Line(const Line&) = delete;
  Line& operator=(const Line&) = delete;

  template <class V>
  Line& kv(std::string_view key, const V& value) {
    obj_.add(key, value);
    return *this;
  }

 private:
  JsonObject obj_;
};

// UTC timestamp with milliseconds, e.g. 2026-11-28T14:31:50.123Z.
std::string utc_timestamp();

}  // namespace pcmoe::log

// A for statement runs the body once when the level is enabled: the macro is one statement with
// no else, so `if (x) PCMOE_INFO(...).kv(...);` is safe, and nothing is formatted when disabled.
#define PCMOE_LOG(level, event)                                                                 \
  for (bool pcmoe_log_on_ = ::pcmoe::log::enabled(level); pcmoe_log_on_; pcmoe_log_on_ = false) \
  ::pcmoe::log::Line(level, event)
#define PCMOE_DEBUG(event) PCMOE_LOG(::pcmoe::log::Level::debug, event)
#define PCMOE_INFO(event) PCMOE_LOG(::pcmoe::log::Level::info, event)
#define PCMOE_WARN(event) PCMOE_LOG(::pcmoe::log::Level::warn, event)
#define PCMOE_ERROR(event) PCMOE_LOG(::pcmoe::log::Level::error, event)
