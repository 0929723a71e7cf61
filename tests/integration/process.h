// Helpers for integration tests that start the real binaries: a child process (posix_spawn,
// stdout and stderr to files, SIGKILLed and reaped by its destructor so that no daemon outlives a
// failed check), waiting for a condition with a deadline (never a sleep as synchronisation),
// reading JSON-lines logs and metrics, and asking a live hub for its status.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "net/curve.h"
#include "proto/messages.h"

namespace pcmoe::test {

// A child process. Not copyable; the destructor SIGKILLs and reaps it if it is still running.
class Process {
 public:
  // Starts argv[0] (a path) with stdout and stderr appended to the given files.
  Process(std::vector<std::string> argv, const std::string& out_path, const std::string& err_path);
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  bool started() const { return pid_ > 0 || code_.has_value(); }
  pid_t pid() const { return pid_; }
  // Sends `sig` if the process still runs (by pid, never by name).
  void signal(int sig) const;
  // True while it runs (reaps it, recording the exit code, once it has exited).
  bool running();
  // The exit code (128 + signal number if a signal ended it), or nullopt if it still runs after
  // timeout_ms. Returns at once if it has already been reaped.
  std::optional<int> wait(int timeout_ms);
  std::optional<int> exit_code() const { return code_; }
  const std::string& err_path() const { return err_path_; }
  const std::string& out_path() const { return out_path_; }

 private:
  pid_t pid_ = -1;
  std::optional<int> code_;
  std::string out_path_, err_path_;
};

// Polls pred() every poll_ms until it holds or timeout_ms passed; returns its last value.
bool wait_until(const std::function<bool()>& pred, int timeout_ms, int poll_ms = 20);

// Milliseconds (fractional) since `t` on the steady clock.
inline double ms_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}

// A TCP port on 127.0.0.1 that was free a moment ago (a throwaway bind to port 0).
std::string free_port();

// The file's content, or "" if it does not exist.
std::string read_or_empty(const std::string& path);
// The lines of a file that contain `needle` (all lines if it is empty).
std::vector<std::string> lines_with(const std::string& path, const std::string& needle = "");
// The non-empty lines of `text`.
std::vector<std::string> non_empty_lines(const std::string& text);
// The last `n` lines of a file (for failure messages).
std::string tail(const std::string& path, size_t n = 15);

// Values of a flat JSON object line (a log or metrics record) by key; nullopt if absent.
std::optional<double> json_number(const std::string& line, const std::string& key);
std::optional<std::string> json_string(const std::string& line, const std::string& key);
// Lines of a JSON-lines log whose "event" is `event`.
std::vector<std::string> log_events(const std::string& path, const std::string& event);

// One status_request to the hub at `endpoint`; nullopt if no answer in time. With CURVE:
// `operator_keys` (an operator's key pair) and the hub's public key `hub_key`.
std::optional<proto::Status> hub_status(const std::string& endpoint, int timeout_ms = 2000,
                                        const std::optional<net::CurveKeyPair>& operator_keys = std::nullopt,
                                        const std::string& hub_key = "");

// One control command (pause, resume, ...) to the hub, as hub_status; true if it answered ok.
bool hub_control(const std::string& endpoint, const std::string& action, int timeout_ms = 2000,
                 const std::optional<net::CurveKeyPair>& operator_keys = std::nullopt,
                 const std::string& hub_key = "");

// Paths of the built binaries and the sources.
std::string app(const std::string& name);    // <build>/apps/<name>
std::string config(const std::string& rel);  // <source>/configs/<rel>
// True if the demo corpora of configs/party-{a,b,c}.yaml are installed.
bool have_demo_corpora();
// Ends the test case with a warning where the demo corpora are not installed (scripts/setup.sh
// installs them; CI has them).
#define PCMOE_SKIP_WITHOUT_DEMO_CORPORA()                                                            \
  do {                                                                                               \
    if (!::pcmoe::test::have_demo_corpora()) {                                                       \
      WARN("the demo corpora (/usr/share/games/fortunes, /usr/include/linux) are missing: skipped"); \
      return;                                                                                        \
    }                                                                                                \
  } while (0)

}  // namespace pcmoe::test
