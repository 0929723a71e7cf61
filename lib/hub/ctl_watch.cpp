// pcmoe-ctl watch (see ctl_watch.h).
#include "hub/ctl_watch.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>

#include <fmt/format.h>

#include "common/error.h"
#include "hub/progress.h"

namespace pcmoe::hub {
namespace {

int terminal_width(std::FILE* out, int fixed) {
  if (fixed > 0) return fixed;
  winsize ws{};
  if (::isatty(::fileno(out)) && ::ioctl(::fileno(out), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
    return ws.ws_col;
  if (const char* c = std::getenv("COLUMNS")) {
    const int n = std::atoi(c);
    if (n > 0) return n;
  }
  return 80;
}

double seconds_now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

int run_watch(const CtlTarget& target, const WatchOptions& options, std::FILE* out, std::FILE* err) {
  const bool tty = ::isatty(::fileno(out)) != 0;
  const int interval_ms = options.interval_ms > 0 ? options.interval_ms : (tty ? 2000 : 10000);
  zmq::context_t ctx;
  ProgressMeter meter;
  CtlTarget t = target;
  t.timeout_ms = std::min(target.timeout_ms, std::max(500, interval_ms));
  double last_answer_s = seconds_now();
  std::string last_state;
  auto print = [&](const std::string& line, bool final) {
    if (tty) {
      std::fprintf(out, "\r%s\033[K%s", line.c_str(), final ? "\n" : "");
    } else {
      std::fprintf(out, "%s\n", line.c_str());
    }
    std::fflush(out);
  };
  while (true) {
    const auto next = std::chrono::steady_clock::now() + std::chrono::milliseconds(interval_ms);
    std::optional<proto::Message> reply;
    try {
      reply = ctl_call(ctx, t, proto::StatusRequest{false});
    } catch (const Error&) {  // a reply that does not decode: as good as none
    }
    const double now_s = seconds_now();
    const auto* s = reply ? std::get_if<proto::Status>(&*reply) : nullptr;
    if (s != nullptr) {
      meter.add(*s, now_s);
      last_answer_s = now_s;
      last_state = s->state;
    } else {
      meter.no_answer(now_s);
      if (last_state == "stopping" || last_state == "finished") {
        print(meter.line(terminal_width(out, options.width)) + " | hub exited", true);
        return kExitOk;
      }
      if ((now_s - last_answer_s) * 1000 > options.give_up_ms) {
        if (tty) std::fputc('\n', out);
        std::fprintf(err, "pcmoe-ctl watch: no answer from the hub at %s for %d s\n", t.endpoint.c_str(),
                     options.give_up_ms / 1000);
        return kExitTransport;
      }
    }
    print(meter.line(terminal_width(out, options.width)), meter.finished());
    if (meter.finished()) return kExitOk;
    std::this_thread::sleep_until(next);
  }
}

int run_wait(const std::function<CtlTarget()>& resolve, int64_t min_step, int timeout_ms, std::FILE* out,
             std::FILE* err) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  zmq::context_t ctx;
  std::string last_problem = "no answer yet";
  while (std::chrono::steady_clock::now() < deadline) {
    const auto next = std::chrono::steady_clock::now() + std::chrono::milliseconds(200);
    try {
      CtlTarget t = resolve();
      t.timeout_ms = std::min(t.timeout_ms, 1000);
      auto reply = ctl_call(ctx, t, proto::StatusRequest{false});
      const auto* s = reply ? std::get_if<proto::Status>(&*reply) : nullptr;
      if (s != nullptr && s->step >= min_step) {
        std::fprintf(out, "step %lld/%lld: %s\n", static_cast<long long>(s->step),
                     static_cast<long long>(s->total_steps), s->state.c_str());
        return kExitOk;
      }
      if (s != nullptr && s->state == "finished") {
        std::fprintf(err, "pcmoe-ctl wait: the run finished at step %lld, before step %lld\n",
                     static_cast<long long>(s->step), static_cast<long long>(min_step));
        return kExitFatal;
      }
      last_problem = s != nullptr ? fmt::format("at step {} ({})", s->step, s->state)
                                  : fmt::format("no answer from {}", t.endpoint);
    } catch (const Error& e) {  // no ctl.json yet, a reply that does not decode, ...
      last_problem = e.what();
    }
    std::this_thread::sleep_until(next);
  }
  std::fprintf(err, "pcmoe-ctl wait: step %lld not reached within %d ms: %s\n",
               static_cast<long long>(min_step), timeout_ms, last_problem.c_str());
  return kExitTransport;
}

}  // namespace pcmoe::hub
