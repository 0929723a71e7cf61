// Integration tests of the real binaries: pcmoe-hub started with a temporary config on a free
// port, pcmoe-ctl status (JSON and human) against it, SIGTERM -> exit 0 within seconds; a config
// error -> exit 2 naming file:line and key; pcmoe-ctl keygen and usage errors. Every process
// started here is ended by its pid (a guard kills and reaps it if a check fails first).
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <thread>

#include "common/fs.h"
#include "net/curve.h"
#include "net/endpoint.h"
#include "net/socket.h"
#include "test_util.h"

extern char** environ;

using namespace pcmoe;

namespace {

const char* kPreset = R"(model:
  d_model: 32
  n_heads: 2
  d_ff: 64
  n_layers: 2
  n_experts: 4
  top_k: 2
train:
  steps: 50
)";

// A child process; the destructor kills (SIGKILL) and reaps it if it is still running.
class Child {
 public:
  Child(const std::vector<std::string>& argv, const std::string& out_path, const std::string& err_path) {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    int rc = posix_spawn(&pid_, args[0], &fa, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) pid_ = -1;
  }
  ~Child() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  bool started() const { return pid_ > 0; }
  void signal(int sig) const { ::kill(pid_, sig); }

  // The exit code (128 + signal if killed), or nullopt if still running after timeout_ms.
  std::optional<int> wait(int timeout_ms) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));
    while (true) {
      int status = 0;
      pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        if (fd >= 0) ::close(fd);
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      if (fd >= 0) {
        pollfd p{fd, POLLIN, 0};  // readable when the child exits
        ::poll(&p, 1, static_cast<int>(left.count()));
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));  // no pidfd: poll waitpid
      }
    }
    if (fd >= 0) ::close(fd);
    return std::nullopt;
  }

 private:
  pid_t pid_ = -1;
};

struct RunResult {
  int code = -1;
  std::string out, err;
};

RunResult run(const std::vector<std::string>& argv, const test::TempDir& dir, int timeout_ms = 15000) {
  const std::string out = fs::join(dir.path(), "run.out"), err = fs::join(dir.path(), "run.err");
  Child c(argv, out, err);
  RunResult r;
  if (!c.started()) return r;
  auto code = c.wait(timeout_ms);
  r.code = code.value_or(-1);
  r.out = fs::exists(out) ? fs::read_file(out) : "";
  r.err = fs::exists(err) ? fs::read_file(err) : "";
  return r;
}

std::string free_port() {
  net::ServerOptions o;
  o.endpoint = "tcp://127.0.0.1:*";
  net::Server probe(o);
  return net::parse_endpoint(probe.endpoint(), net::EndpointUse::connect).port;
}

std::string bin(const std::string& name) { return test::bin_dir() + "/" + name; }

bool have_binaries() {
  if (fs::exists(bin("pcmoe-hub")) && fs::exists(bin("pcmoe-ctl"))) return true;
  WARN("pcmoe-hub / pcmoe-ctl not built in " << test::bin_dir() << ": skipped");
  return false;
}

}  // namespace

TEST_CASE("pcmoe-hub binary: ctl status, then SIGTERM exits 0", "[integration][hub]") {
  if (!have_binaries()) return;
  test::TempDir dir;
  dir.write("preset.yaml", kPreset);
  const std::string port = free_port();
  const std::string cfg = dir.write(
      "hub.yaml", "preset: preset.yaml\nhub:\n  bind: tcp://127.0.0.1:" + port +
                      "\n  insecure: true\n  parties:\n    - id: a\n    - id: b\n  out_dir: " + dir.path() +
                      "/out\n  log_file: " + dir.path() + "/hub.log\n");
  Child hub({bin("pcmoe-hub"), "--config", cfg}, dir.path() + "/hub.out", dir.path() + "/hub.err");
  REQUIRE(hub.started());

  // pcmoe-ctl waits (up to its timeout) for the hub to come up: no sleeping here.
  RunResult st = run({bin("pcmoe-ctl"), "--config", cfg, "status", "--json", "--timeout-ms", "10000"}, dir);
  INFO(st.err);
  REQUIRE(st.code == 0);
  CHECK_THAT(st.out, Catch::StartsWith("{\"run_id\":\""));
  CHECK_THAT(st.out, Catch::Contains("\"state\":\"waiting\"") && Catch::Contains("\"total_steps\":50") &&
                         Catch::Contains("\"id\":\"a\"") && Catch::Contains("\"id\":\"b\"") &&
                         Catch::Contains("\"placement\":[[0,1,0,1],[0,1,0,1]]"));
  CHECK(std::count(st.out.begin(), st.out.end(), '\n') == 1);
  RunResult human = run({bin("pcmoe-ctl"), "--config", cfg, "status"}, dir);
  CHECK(human.code == 0);
  CHECK_THAT(human.out, Catch::Contains("| state waiting | step 0/50 |") && Catch::Contains("PARTY") &&
                            Catch::Contains("layer  0:"));
  RunResult pause = run({bin("pcmoe-ctl"), "--config", cfg, "pause", "--json"}, dir);
  CHECK(pause.code == 0);
  CHECK_THAT(pause.out, Catch::Contains("\"ok\":true"));
  CHECK(run({bin("pcmoe-ctl"), "--config", cfg, "pause"}, dir).code == 1);  // already paused: refused

  hub.signal(SIGTERM);
  CHECK(hub.wait(5000) == 0);
  const std::string log = fs::read_file(dir.path() + "/hub.log");
  CHECK_THAT(log,
             Catch::Contains("\"event\":\"hub.started\"") && Catch::Contains("\"event\":\"hub.finished\""));
  CHECK(fs::exists(dir.path() + "/out/hub_state.json"));
  // Nobody listens any more: a clear message and exit 3.
  RunResult gone = run({bin("pcmoe-ctl"), "--config", cfg, "status", "--timeout-ms", "300"}, dir);
  CHECK(gone.code == 3);
  CHECK_THAT(gone.err,
             Catch::Contains("no answer from the hub at tcp://127.0.0.1:" + port + " within 300 ms"));
}

TEST_CASE("pcmoe-hub binary: CURVE with a key from pcmoe-ctl keygen", "[integration][hub]") {
  if (!have_binaries()) return;
  if (!net::curve_available()) {
    WARN("libzmq without CURVE: skipped");
    return;
  }
  test::TempDir dir;
  dir.write("preset.yaml", kPreset);
  RunResult kg = run(
      {bin("pcmoe-ctl"), "keygen", "--out", dir.path() + "/hub.key", "--public-out", dir.path() + "/hub.pub"},
      dir);
  REQUIRE(kg.code == 0);
  CHECK(kg.out.size() == 41);
  CHECK(kg.out.substr(0, 40) == net::read_public_key_file(dir.path() + "/hub.pub"));
  CHECK(net::read_key_file(dir.path() + "/hub.key").public_key == kg.out.substr(0, 40));
  struct stat sb {};
  REQUIRE(::stat((dir.path() + "/hub.key").c_str(), &sb) == 0);
  CHECK((sb.st_mode & 0777) == 0600);
  const std::string party_key = net::generate_keypair().public_key;
  // The operator's key pair, made with keygen --dir (the federation's set).
  RunResult set =
      run({bin("pcmoe-ctl"), "keygen", "--dir", dir.path() + "/keys", "--names", "operator"}, dir);
  REQUIRE(set.code == 0);
  CHECK_THAT(set.out, Catch::StartsWith("operator "));
  CHECK(net::read_public_key_file(dir.path() + "/keys/operator.pub") == set.out.substr(9, 40));
  const std::string cfg =
      dir.write("hub.yaml", "preset: preset.yaml\nhub:\n  bind: tcp://127.0.0.1:" + free_port() +
                                "\n  secret_key_file: hub.key\n  ctl_key_file: keys/operator.key\n"
                                "  parties:\n    - id: a\n"
                                "      public_key: \"" +
                                party_key + "\"\n  out_dir: " + dir.path() +
                                "/out\n  log_file: " + dir.path() + "/hub.log\n");
  Child hub({bin("pcmoe-hub"), "--config", cfg}, dir.path() + "/hub.out", dir.path() + "/hub.err");
  REQUIRE(hub.started());
  RunResult st = run({bin("pcmoe-ctl"), "--config", cfg, "status", "--json", "--timeout-ms", "10000"}, dir);
  INFO(st.err);
  CHECK(st.code == 0);
  CHECK_THAT(st.out, Catch::Contains("\"state\":\"waiting\""));
  // The hub's own key pair is no operator's: refused at the handshake, no answer.
  RunResult own = run(
      {bin("pcmoe-ctl"), "--config", cfg, "--key", dir.path() + "/hub.key", "status", "--timeout-ms", "500"},
      dir);
  CHECK(own.code == 3);
  // Without the keys (plain --endpoint), the CURVE hub does not answer.
  RunResult plain =
      run({bin("pcmoe-ctl"), "--endpoint", "tcp://127.0.0.1:1", "status", "--timeout-ms", "200"}, dir);
  CHECK(plain.code == 3);
  hub.signal(SIGINT);
  CHECK(hub.wait(5000) == 0);
}

TEST_CASE("pcmoe-hub binary: a config error exits 2 naming file, line and key", "[integration][hub]") {
  if (!have_binaries()) return;
  test::TempDir dir;
  dir.write("preset.yaml", kPreset);
  const std::string cfg = dir.write("hub.yaml",
                                    "preset: preset.yaml\nhub:\n  parties:\n    - id: a\n"
                                    "  steps_per_turn: zero\n");
  RunResult r = run({bin("pcmoe-hub"), "--config", cfg}, dir);
  CHECK(r.code == 2);
  CHECK_THAT(r.err, Catch::Contains("hub.yaml:5") && Catch::Contains("hub.steps_per_turn"));
  RunResult unknown = run({bin("pcmoe-hub"), "--config", cfg, "--set", "hub.steps_per_turnn=2"}, dir);
  CHECK(unknown.code == 2);
  RunResult missing = run({bin("pcmoe-hub")}, dir);
  CHECK(missing.code == 2);
  CHECK_THAT(missing.err, Catch::Contains("--config FILE is required"));
}

TEST_CASE("pcmoe-ctl usage errors exit 2", "[integration][hub]") {
  if (!have_binaries()) return;
  test::TempDir dir;
  RunResult none = run({bin("pcmoe-ctl")}, dir);
  CHECK(none.code == 2);
  CHECK_THAT(none.err, Catch::Contains("missing command") && Catch::Contains("usage: pcmoe-ctl"));
  CHECK(run({bin("pcmoe-ctl"), "dance", "--endpoint", "tcp://127.0.0.1:1"}, dir).code == 2);
  CHECK(run({bin("pcmoe-ctl"), "status"}, dir).code == 2);  // needs --config or --endpoint
  CHECK(run({bin("pcmoe-ctl"), "keygen"}, dir).code == 2);  // needs --out
  CHECK(run({bin("pcmoe-ctl"), "status", "--endpoint", "tcp://127.0.0.1:1", "--timeout-ms", "x"}, dir).code ==
        2);
  RunResult help = run({bin("pcmoe-ctl"), "--help"}, dir);
  CHECK(help.code == 0);
  CHECK_THAT(help.out, Catch::Contains("keygen"));
}
