// Structured JSON-lines logger (see log.h).
#include "common/log.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <mutex>

#include "common/error.h"

namespace pcmoe::log {
namespace {

struct State {
  std::mutex mu;
  std::string proc = "pcmoe";
  int fd = STDERR_FILENO;
};

State& state() {
  static State s;
  return s;
}

std::atomic<int> g_level{static_cast<int>(Level::info)};
std::atomic<bool> g_initialized{false};

}  // namespace

bool initialized() { return g_initialized.load(); }

void init(const Options& options) {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  s.proc = options.proc;
  if (!options.path.empty()) {
    int fd = ::open(options.path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
      throw ConfigError(fmt::format("cannot open log file '{}': {}", options.path, std::strerror(errno)));
    }
    if (s.fd != STDERR_FILENO) ::close(s.fd);
    s.fd = fd;
  }
  g_level.store(static_cast<int>(options.level));
  g_initialized.store(true);
}

Level parse_level(std::string_view name) {
  if (name == "debug") return Level::debug;
  if (name == "info") return Level::info;
  if (name == "warn") return Level::warn;
  if (name == "error") return Level::error;
  if (name == "off") return Level::off;
  throw ConfigError(fmt::format("unknown log level '{}' (expected debug, info, warn, error or off)", name));
}

std::string_view level_name(Level level) {
  switch (level) {
    case Level::debug:
      return "debug";
    case Level::info:
      return "info";
    case Level::warn:
      return "warn";
    case Level::error:
      return "error";
    case Level::off:
      return "off";
  }
  return "?";
}

bool enabled(Level level) { return static_cast<int>(level) >= g_level.load(std::memory_order_relaxed); }

std::string utc_timestamp() {
  using namespace std::chrono;
  auto now = system_clock::now();
  auto ms = duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
  std::time_t t = system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  return fmt::format("{}.{:03d}Z", buf, static_cast<int>(ms));
}

Line::Line(Level level, std::string_view event) {
  obj_.add("ts", utc_timestamp());
  obj_.add("level", level_name(level));
  {
    State& s = state();
    std::lock_guard<std::mutex> lock(s.mu);
    obj_.add("proc", s.proc);
  }
  obj_.add("event", event);
}

Line::~Line() {
  std::string text = obj_.str();
  text += '\n';
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  const char* p = text.data();
  size_t left = text.size();
  while (left > 0) {
    ssize_t n = ::write(s.fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // nowhere left to report a logging failure
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
}

}  // namespace pcmoe::log
