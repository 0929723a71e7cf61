// Child processes and log helpers for integration tests (see process.h).
#include "process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <sstream>
#include <thread>

#include "common/fs.h"
#include "net/context.h"
#include "net/endpoint.h"
#include "net/rpc.h"
#include "net/socket.h"
#include "test_util.h"

extern char** environ;

namespace pcmoe::test {

using Clock = std::chrono::steady_clock;

// ---- Process ----

Process::Process(std::vector<std::string> argv, const std::string& out_path, const std::string& err_path)
    : out_path_(out_path), err_path_(err_path) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_addopen(&fa, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  if (posix_spawn(&pid_, args[0], &fa, nullptr, args.data(), environ) != 0) pid_ = -1;
  posix_spawn_file_actions_destroy(&fa);
}

Process::~Process() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
}

void Process::signal(int sig) const {
  if (pid_ > 0) ::kill(pid_, sig);
}

bool Process::running() { return !wait(0).has_value(); }

std::optional<int> Process::wait(int timeout_ms) {
  if (code_) return code_;
  if (pid_ <= 0) return std::nullopt;
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));
  while (true) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      if (fd >= 0) ::close(fd);
      pid_ = -1;
      code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      return code_;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) break;
    if (fd >= 0) {
      pollfd p{fd, POLLIN, 0};  // readable once the child has exited
      ::poll(&p, 1, static_cast<int>(left));
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));  // no pidfd: poll waitpid
    }
  }
  if (fd >= 0) ::close(fd);
  return std::nullopt;
}

// ---- waiting and files ----

bool wait_until(const std::function<bool()>& pred, int timeout_ms, int poll_ms) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (true) {
    if (pred()) return true;
    if (Clock::now() >= deadline) return pred();
    std::this_thread::sleep_for(std::chrono::milliseconds(poll_ms));
  }
}

std::string free_port() {
  net::ServerOptions o;
  o.endpoint = "tcp://127.0.0.1:*";
  net::Server probe(o);
  return net::parse_endpoint(probe.endpoint(), net::EndpointUse::connect).port;
}

std::string read_or_empty(const std::string& path) { return fs::exists(path) ? fs::read_file(path) : ""; }

std::vector<std::string> non_empty_lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) out.push_back(line);
  }
  return out;
}

std::vector<std::string> lines_with(const std::string& path, const std::string& needle) {
  std::vector<std::string> out;
  for (auto& line : non_empty_lines(read_or_empty(path))) {
    if (needle.empty() || line.find(needle) != std::string::npos) out.push_back(std::move(line));
  }
  return out;
}

std::string tail(const std::string& path, size_t n) {
  auto lines = lines_with(path);
  std::string out = "--- " + path + " (last " + std::to_string(n) + " lines)\n";
  for (size_t i = lines.size() > n ? lines.size() - n : 0; i < lines.size(); ++i)
    out += lines[i].substr(0, 400) + "\n";
  return out;
}

// ---- flat JSON ----

namespace {
// The position just after `"key":` in a flat JSON object, or npos.
size_t value_pos(const std::string& line, const std::string& key) {
  const std::string k = "\"" + key + "\":";
  size_t at = line.find(k);
  return at == std::string::npos ? at : at + k.size();
}
}  // namespace

std::optional<double> json_number(const std::string& line, const std::string& key) {
  size_t at = value_pos(line, key);
  if (at == std::string::npos) return std::nullopt;
  const char* begin = line.c_str() + at;
  char* end = nullptr;
  double v = std::strtod(begin, &end);
  if (end == begin) return std::nullopt;
  return v;
}

std::optional<std::string> json_string(const std::string& line, const std::string& key) {
  size_t at = value_pos(line, key);
  if (at == std::string::npos || at >= line.size() || line[at] != '"') return std::nullopt;
  std::string out;
  for (size_t i = at + 1; i < line.size(); ++i) {
    if (line[i] == '\\' && i + 1 < line.size()) {
      out += line[++i];
    } else if (line[i] == '"') {
      return out;
    } else {
      out += line[i];
    }
  }
  return std::nullopt;
}

std::vector<std::string> log_events(const std::string& path, const std::string& event) {
  return lines_with(path, "\"event\":\"" + event + "\"");
}

// ---- the hub ----

namespace {

// Sends `request` to the hub and returns its first answer of type T (nullopt: none in time).
template <class T>
std::optional<T> ask_hub(const std::string& endpoint, const proto::Message& request, int timeout_ms,
                         const std::optional<net::CurveKeyPair>& operator_keys, const std::string& hub_key) {
  net::ClientOptions o;
  o.endpoint = endpoint;
  if (!hub_key.empty()) {
    o.curve = operator_keys;
    o.server_public_key = hub_key;
  }
  net::Client client(net::default_context(), o);
  if (!net::send_message(client, request, timeout_ms)) return std::nullopt;
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (Clock::now() < deadline) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    auto m = net::recv_message(client, static_cast<int>(std::max<int64_t>(left, 1)), proto::Limits{});
    if (!m) break;
    if (auto* answer = std::get_if<T>(&*m)) return *answer;
  }
  return std::nullopt;
}

}  // namespace

std::optional<proto::Status> hub_status(const std::string& endpoint, int timeout_ms,
                                        const std::optional<net::CurveKeyPair>& operator_keys,
                                        const std::string& hub_key) {
  return ask_hub<proto::Status>(endpoint, proto::StatusRequest{false}, timeout_ms, operator_keys, hub_key);
}

bool hub_control(const std::string& endpoint, const std::string& action, int timeout_ms,
                 const std::optional<net::CurveKeyPair>& operator_keys, const std::string& hub_key) {
  auto ack = ask_hub<proto::ControlAck>(endpoint, proto::Control{action}, timeout_ms, operator_keys, hub_key);
  return ack && ack->ok;
}

// ---- paths ----

std::string app(const std::string& name) { return bin_dir() + "/" + name; }
std::string config(const std::string& rel) { return source_dir() + "/configs/" + rel; }

bool have_demo_corpora() {
  return fs::exists("/usr/share/games/fortunes") && fs::exists("/usr/share/games/fortunes/de") &&
         fs::exists("/usr/include/linux");
}

}  // namespace pcmoe::test
