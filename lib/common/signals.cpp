// Signal handling (see signals.h).
#include "common/signals.h"

#include <atomic>
#include <csignal>

namespace pcmoe::signals {
namespace {
std::atomic<bool> g_stop{false};
std::atomic<int> g_signal{0};

extern "C" void on_signal(int sig) {
  g_signal.store(sig);
  g_stop.store(true);
}
}  // namespace

void install() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: blocking calls return EINTR and loops notice the flag
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
  // A file-size limit (RLIMIT_FSIZE) makes a write fail with EFBIG, which the writer handles like a
  // full disk, instead of killing the process.
  std::signal(SIGXFSZ, SIG_IGN);
}

bool stop_requested() { return g_stop.load(); }
int stop_signal() { return g_signal.load(); }
void request_stop() { g_stop.store(true); }
void reset() {
  g_stop.store(false);
  g_signal.store(0);
}

}  // namespace pcmoe::signals
