// The request trace's buffer and file (see trace.h).
#include "common/trace.h"

#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <vector>

namespace pcmoe::trace {
namespace {

struct Event {
  const char* what;
  uint64_t request_id;
  int64_t t_ns, a, b;
  char kind;
  std::string tag;
};

struct Buffer {
  std::mutex mu;
  std::string dir, name = "proc";
  std::vector<Event> events;
  uint64_t dropped = 0;
  ~Buffer() { write(); }
  void write() {
    std::lock_guard<std::mutex> lock(mu);
    if (dir.empty() || events.empty()) return;
    const std::string path = dir + "/trace-" + name + "-" + std::to_string(::getpid()) + ".jsonl";
    // Appends: a second flush adds the events since the first.
    FILE* f = std::fopen(path.c_str(), "a");
    if (f == nullptr) {
      std::fprintf(stderr, "pcmoe: cannot write the request trace %s\n", path.c_str());
      return;
    }
    for (const auto& e : events) {
      std::fprintf(f,
                   "{\"e\":\"%s\",\"r\":%llu,\"k\":\"%c\",\"t\":%lld,\"a\":%lld,\"b\":%lld,\"g\":\"%s\"}\n",
                   e.what, static_cast<unsigned long long>(e.request_id), e.kind ? e.kind : '-',
                   static_cast<long long>(e.t_ns), static_cast<long long>(e.a), static_cast<long long>(e.b),
                   e.tag.c_str());
    }
    if (dropped > 0)
      std::fprintf(f, "{\"e\":\"dropped\",\"r\":%llu}\n", static_cast<unsigned long long>(dropped));
    std::fclose(f);
    events.clear();
    dropped = 0;
  }
};

Buffer& buffer() {
  static Buffer b;
  return b;
}

const char* env_dir() {
  const char* d = std::getenv("PCMOE_TRACE");
  return d != nullptr && *d != '\0' ? d : nullptr;
}

}  // namespace

bool on() {
  static const bool enabled = [] {
    if (const char* d = env_dir()) {
      buffer().dir = d;
      return true;
    }
    return false;
  }();
  return enabled;
}

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void set_name(const std::string& name) {
  if (!on()) return;
  std::lock_guard<std::mutex> lock(buffer().mu);
  std::string clean;
  for (char c : name)
    clean += (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_') ? c : '_';
  buffer().name = clean.empty() ? "proc" : clean;
}

void mark(const char* what, uint64_t request_id, char kind, int64_t t_ns, int64_t a, int64_t b,
          std::string_view tag) {
  if (!on()) return;
  Buffer& buf = buffer();
  std::lock_guard<std::mutex> lock(buf.mu);
  if (buf.events.size() >= kMaxEvents) {
    buf.dropped++;
    return;
  }
  std::string clean;
  for (char c : tag) clean += (c == '"' || c == '\\' || static_cast<unsigned char>(c) < 0x20) ? '?' : c;
  buf.events.push_back({what, request_id, t_ns, a, b, kind, std::move(clean)});
}

void flush() {
  if (on()) buffer().write();
}

}  // namespace pcmoe::trace
