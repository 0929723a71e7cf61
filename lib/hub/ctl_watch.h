// Owns the two commands of pcmoe-ctl that follow a run over time:
// - `watch` asks the hub for its status every interval and prints the progress line (progress.h)
//   fitted to the terminal — rewritten in place on a terminal, one line per interval otherwise
//   (logs, files). Exit 0 once the hub reports `finished`, or stops answering after it was
//   stopping; exit 3 when it has not answered for `give_up_ms`.
// - `wait` polls until the hub answers with a global step >= --step (for scripts: "until the
//   federation is training"); it re-reads where the hub is each time (`resolve`), so it may start
//   before the hub has written its ctl.json. Exit 0 when reached, 1 if the run ended before that
//   step, 3 at the deadline.
// Single-threaded; writes to `out` / `err` only.
#pragma once

#include <cstdint>
#include <cstdio>
#include <functional>

#include "hub/ctl.h"

namespace pcmoe::hub {

struct WatchOptions {
  int interval_ms = 0;     // 0: 2000 on a terminal, 10000 otherwise
  int width = 0;           // 0: the terminal's width (TIOCGWINSZ), else $COLUMNS, else 80
  int give_up_ms = 60000;  // no answer for this long: exit 3
};

int run_watch(const CtlTarget& target, const WatchOptions& options, std::FILE* out, std::FILE* err);

// `resolve` may throw ConfigError while the hub is not reachable yet (no ctl.json): retried.
int run_wait(const std::function<CtlTarget()>& resolve, int64_t min_step, int timeout_ms, std::FILE* out,
             std::FILE* err);

}  // namespace pcmoe::hub
