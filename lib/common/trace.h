// Owns the request trace, a benchmark's instrument: with PCMOE_TRACE=DIR in the environment, the
// requester and the expert service stamp each remote request at every hand-over between threads
// and processes (steady clock, ns: comparable between processes on one machine), and the process
// writes them at exit to DIR/trace-<name>-<pid>.jsonl, one event per line:
//   {"e":"<point>","r":<request id>,"k":"f"|"b","t":<ns>,"a":<int>,"b":<int>,"g":"<tag>"}
// bench/trace_report.py joins the files of a run into a timeline per request and per layer.
// Without PCMOE_TRACE every call is one branch on a cached flag. Thread-safe; events beyond
// kMaxEvents are dropped (and counted in the file's last line).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace pcmoe::trace {

constexpr size_t kMaxEvents = 4'000'000;

bool on();
int64_t now_ns();
// The file's name part (a party id); before the first event is written.
void set_name(const std::string& name);
// `what` must be a string literal (kept by pointer).
void mark(const char* what, uint64_t request_id, char kind, int64_t t_ns, int64_t a = -1, int64_t b = -1,
          std::string_view tag = {});
// Writes the events so far (also done at exit); a no-op when off.
void flush();

}  // namespace pcmoe::trace
