// Metrics file and progress line (see metrics.h).
#include "train/metrics.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/error.h"
#include "common/fs.h"

namespace pcmoe::train {

MetricsWriter::MetricsWriter(const std::string& path) : path_(path) {
  fs::make_dirs(fs::dirname(path));
  f_ = std::fopen(path.c_str(), "a");
  if (!f_) throw Error(fmt::format("cannot open metrics file '{}': {}", path, std::strerror(errno)));
}

MetricsWriter::~MetricsWriter() {
  if (f_) std::fclose(f_);
}

void MetricsWriter::write(const JsonObject& record) {
  std::string line = record.str();
  line += '\n';
  std::fwrite(line.data(), 1, line.size(), f_);
  std::fflush(f_);
}

Progress::Progress(const std::string& mode, int64_t total_steps)
    : enabled_(mode == "on" || (mode == "auto" && ::isatty(STDERR_FILENO))), total_(total_steps) {}

void Progress::update(int64_t step, const std::string& text) {
  if (!enabled_) return;
  auto now = std::chrono::steady_clock::now();
  if (step + 1 < total_ && now - last_draw_ < std::chrono::milliseconds(200)) return;
  last_draw_ = now;
  std::string line = fmt::format("\r{}", text);
  if (line.size() < last_len_) line += std::string(last_len_ - line.size(), ' ');
  last_len_ = text.size() + 1;
  std::fputs(line.c_str(), stderr);
  std::fflush(stderr);
}

void Progress::finish() {
  if (enabled_ && last_len_ > 0) std::fputs("\n", stderr);
  last_len_ = 0;
}

std::string format_duration(double seconds) {
  if (!(seconds >= 0) || seconds > 1e8) return "?";
  auto s = static_cast<int64_t>(seconds + 0.5);
  if (s >= 3600) return fmt::format("{}h{:02d}m", s / 3600, static_cast<int>((s % 3600) / 60));
  if (s >= 60) return fmt::format("{}m{:02d}s", s / 60, static_cast<int>(s % 60));
  return fmt::format("{}s", s);
}

}  // namespace pcmoe::train
