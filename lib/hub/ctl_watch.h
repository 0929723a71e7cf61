// Owns `pcmoe-ctl watch`: asks the hub for its status every interval and prints the progress line
// (progress.h) fitted to the terminal — rewritten in place on a terminal, one line per interval
// otherwise (logs, files). Ends with exit 0 once the hub reports `finished`, or stops answering
// after it was stopping; exit 3 when it has not answered for `give_up_ms`.
// Single-threaded; writes to `out` only.
#pragma once

#include <cstdio>

#include "hub/ctl.h"

namespace pcmoe::hub {

struct WatchOptions {
  int interval_ms = 0;     // 0: 2000 on a terminal, 10000 otherwise
  int width = 0;           // 0: the terminal's width (TIOCGWINSZ), else $COLUMNS, else 80
  int give_up_ms = 60000;  // no answer for this long: exit 3
};

int run_watch(const CtlTarget& target, const WatchOptions& options, std::FILE* out, std::FILE* err);

}  // namespace pcmoe::hub
