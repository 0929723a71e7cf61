// Owns the JSONL metrics file of a trainer (one JSON object per line, flushed per line, so
// `tail -f` and plot scripts see every step) and the live progress line on a terminal.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

#include "common/json.h"

namespace pcmoe::train {

class MetricsWriter {
 public:
  // Appends to `path` (directories created). Throws pcmoe::Error if it cannot be opened.
  explicit MetricsWriter(const std::string& path);
  ~MetricsWriter();
  MetricsWriter(const MetricsWriter&) = delete;
  MetricsWriter& operator=(const MetricsWriter&) = delete;
  void write(const JsonObject& record);
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::FILE* f_ = nullptr;
};

// A one-line live status on stderr ("\r"-rewritten), shown only when enabled.
class Progress {
 public:
  // mode: "auto" (enabled when stderr is a terminal), "on", "off".
  Progress(const std::string& mode, int64_t total_steps);
  bool enabled() const { return enabled_; }
  void update(int64_t step, const std::string& text);
  void finish();  // ends the line

 private:
  bool enabled_;
  int64_t total_;
  size_t last_len_ = 0;
  std::chrono::steady_clock::time_point last_draw_{};
};

// "1h02m", "3m20s", "12s".
std::string format_duration(double seconds);

}  // namespace pcmoe::train
