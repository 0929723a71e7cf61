// Misconfigurations of the real binaries: each ends the process within seconds with exit code 2
// (configuration) or 3 (transport) and ONE line on stderr that names what is wrong, where it was
// set (file:line or --set, and the key) and what to do. Covered: a missing data file, malformed
// endpoints (party.hub, hub.bind), an unknown key (in a file and in --set), the hub's port in use,
// and parties the hub refuses: a different model preset (config_mismatch, both hashes), an id the
// hub does not list, a CURVE key that is not the configured one; and no hub at all (hub_timeout).
// The configs are small temporary ones (a tiny preset, a tiny private corpus), logs go to files,
// so stderr holds only what an operator reads.
#include <catch2/catch.hpp>

#include <signal.h>

#include <chrono>
#include <string>
#include <vector>

#include "common/fs.h"
#include "process.h"
#include "test_util.h"

using namespace pcmoe;

namespace {

using Clock = std::chrono::steady_clock;

const char* kPreset = R"(model:
  seq_len: 32
  d_model: 32
  n_layers: 2
  n_heads: 2
  d_ff: 48
  n_experts: 4
  top_k: 2
train:
  steps: 20
  warmup_steps: 2
  batch_size: 2
  eval_every: 0
  eval_batches: 1
)";

struct Result {
  int code = -1;
  std::string err;
  double ms = 0;
  std::vector<std::string> err_lines() const { return test::non_empty_lines(err); }
};

// The configs of a two-party federation in a temporary directory.
class Setup {
 public:
  Setup() {
    dir_.write("preset.yaml", kPreset);
    std::string doc;
    for (int i = 0; i < 200; ++i)
      doc += "the quick brown fox jumps over the lazy dog " + std::to_string(i) + "\n";
    for (int i = 0; i < 6; ++i) dir_.write("corpus/doc" + std::to_string(i) + ".txt", doc);
    port_ = test::free_port();
  }
  const std::string& path() const { return dir_.path(); }
  std::string endpoint() const { return "tcp://127.0.0.1:" + port_; }

  // hub.yaml binding `bind` (default: endpoint()); `extra` is appended to the hub: block.
  std::string hub_config(const std::string& name, const std::string& bind = "", const std::string& extra = "",
                         const std::string& parties = "    - id: a\n    - id: b\n") const {
    // Plain mode (this host only) unless the test gives keys.
    const std::string plain = extra.find("secret_key_file") == std::string::npos ? "  insecure: true\n" : "";
    return dir_.write(name, "preset: preset.yaml\nhub:\n  bind: " + (bind.empty() ? endpoint() : bind) +
                                "\n" + plain + "  parties:\n" + parties + "  out_dir: " + path() + "/" +
                                name + ".out\n  log_file: " + path() + "/" + name + ".log\n" + extra);
  }
  // party.yaml of party `id` connecting to `hub` (default: endpoint()); `extra` is appended to the
  // party: block, `data_path` replaces the corpus.
  std::string party_config(const std::string& name, const std::string& id, const std::string& hub = "",
                           const std::string& extra = "", const std::string& data_path = "") const {
    return dir_.write(
        name, "preset: preset.yaml\nparty:\n  id: " + id + "\n  hub: " + (hub.empty() ? endpoint() : hub) +
                  "\n  hub_timeout_ms: 20000\n" +
                  (extra.find("curve:") == std::string::npos ? "  insecure: true\n" : "") + extra +
                  "data:\n  sources:\n    - path: " + (data_path.empty() ? path() + "/corpus" : data_path) +
                  "\n      format: text\nrun:\n  seed: 5\n  out_dir: " + path() + "/" + name +
                  ".out\n  log_file: " + path() + "/" + name + ".log\n");
  }

  // Runs to completion (the test fails if it takes over timeout_ms).
  Result run(std::vector<std::string> argv, int timeout_ms = 15000) {
    const std::string base = path() + "/run" + std::to_string(++runs_);
    const auto t0 = Clock::now();
    test::Process p(std::move(argv), base + ".out", base + ".err");
    auto code = p.wait(timeout_ms);
    Result r;
    r.ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    r.err = test::read_or_empty(base + ".err");
    INFO("stderr: " << r.err);
    REQUIRE(code.has_value());
    r.code = *code;
    return r;
  }
  // Starts pcmoe-hub with `config` and waits for it to listen.
  std::unique_ptr<test::Process> start_hub(const std::string& config) {
    auto hub =
        std::make_unique<test::Process>(std::vector<std::string>{test::app("pcmoe-hub"), "--config", config},
                                        config + ".stdout", config + ".stderr");
    const std::string log = config + ".log";  // hub_config() logs there
    bool up = test::wait_until(
        [&] { return !test::log_events(log, "hub.started").empty() || !hub->running(); }, 30000);
    INFO(test::read_or_empty(config + ".stderr"));
    REQUIRE(up);
    REQUIRE(hub->running());
    return hub;
  }

 private:
  test::TempDir dir_;
  std::string port_;
  int runs_ = 0;
};

// "FILE:LINE" of the first line of `file` that contains `needle`.
std::string where(const std::string& file, const std::string& needle) {
  const auto lines = test::non_empty_lines(test::read_or_empty(file));
  for (size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].find(needle) != std::string::npos) return file + ":" + std::to_string(i + 1);
  }
  return file + ":?";
}

// Exactly one line on stderr, containing every one of `parts`.
void check_one_line(const Result& r, const std::vector<std::string>& parts) {
  INFO("stderr: " << r.err);
  const auto lines = r.err_lines();
  REQUIRE(lines.size() == 1);
  for (const auto& p : parts) CHECK_THAT(lines[0], Catch::Contains(p));
}

std::string party_bin() { return test::app("pcmoe-party"); }
std::string hub_bin() { return test::app("pcmoe-hub"); }

}  // namespace

TEST_CASE("config errors: bad files and values exit 2 with one line naming file, key and fix",
          "[integration][config]") {
  Setup s;
  SECTION("a data path that does not exist") {
    auto cfg = s.party_config("party.yaml", "a", "", "", s.path() + "/no-such-corpus");
    auto r = s.run({party_bin(), "--config", cfg});
    CHECK(r.code == 2);
    check_one_line(
        r, {"pcmoe-party: configuration error: ", where(cfg, "no-such-corpus"), "data.sources[0].path",
            s.path() + "/no-such-corpus", "does not exist", "fix the path"});
  }
  SECTION("a malformed hub endpoint in the party's config") {
    auto cfg = s.party_config("party.yaml", "a", "tcp://nowhere");
    auto r = s.run({party_bin(), "--config", cfg});
    CHECK(r.code == 2);
    CHECK(r.ms < 5000);
    check_one_line(r, {"pcmoe-party: configuration error: ", where(cfg, "nowhere"), "party.hub",
                       "'tcp://nowhere'", "expected tcp://host:port"});
    auto set = s.run(
        {party_bin(), "--config", s.party_config("party2.yaml", "a"), "--set", "party.hub=tcp://nowhere"});
    CHECK(set.code == 2);
    check_one_line(set, {"--set", "party.hub", "'tcp://nowhere'"});
  }
  SECTION("a malformed hub.bind") {
    auto cfg = s.hub_config("hub.yaml", "tcp://127.0.0.1:notaport");
    auto r = s.run({hub_bin(), "--config", cfg});
    CHECK(r.code == 2);
    check_one_line(r, {"pcmoe-hub: configuration error: ", where(cfg, "notaport"), "hub.bind",
                       "invalid port 'notaport'"});
  }
  SECTION("an unknown key, in a file and in --set") {
    auto cfg = s.hub_config("hub.yaml", "", "  heartbeat_msec: 200\n");
    auto r = s.run({hub_bin(), "--config", cfg});
    CHECK(r.code == 2);
    check_one_line(r, {"pcmoe-hub: configuration error: ", where(cfg, "heartbeat_msec"), "hub.heartbeat_msec",
                       "unknown key", "did you mean 'hub.heartbeat_ms'?"});
    auto set =
        s.run({party_bin(), "--config", s.party_config("party.yaml", "a"), "--set", "party.hearbeat_ms=100"});
    CHECK(set.code == 2);
    check_one_line(set, {"--set", "party.hearbeat_ms", "unknown key", "did you mean 'party.heartbeat_ms'?"});
  }
}

TEST_CASE("config errors: the hub's port in use exits 3 with one line naming hub.bind",
          "[integration][config]") {
  Setup s;
  auto first = s.start_hub(s.hub_config("hub.yaml"));
  auto cfg = s.hub_config("hub2.yaml");
  auto r = s.run({hub_bin(), "--config", cfg});
  CHECK(r.code == 3);
  CHECK(r.ms < 5000);
  check_one_line(r, {"pcmoe-hub: transport error: ", where(cfg, "bind:"), "hub.bind", s.endpoint(), "in use",
                     "another pcmoe-hub"});
  first->signal(SIGTERM);
  CHECK(first->wait(10000) == 0);
}

TEST_CASE("config errors: parties the hub refuses exit 2 at once with one line saying why and what to do",
          "[integration][config]") {
  Setup s;
  auto hub = s.start_hub(s.hub_config("hub.yaml"));
  const std::string hub_hash =
      test::json_string(test::log_events(s.path() + "/hub.yaml.log", "hub.started").at(0), "model_hash")
          .value_or("?");

  SECTION("a different model preset: config_mismatch naming both hashes") {
    auto cfg = s.party_config("party.yaml", "a");
    auto r = s.run({party_bin(), "--config", cfg, "--set", "model.d_model=64"});
    CHECK(r.code == 2);
    CHECK(r.ms < 5000);
    auto start = test::log_events(s.path() + "/party.yaml.log", "party.start");
    REQUIRE(start.size() == 1);
    const std::string party_hash = test::json_string(start[0], "config_hash").value_or("?");
    CHECK(party_hash != hub_hash);
    check_one_line(r, {"pcmoe-party: configuration error: ", "config_mismatch", party_hash, hub_hash,
                       "same preset (model + train)"});
  }
  SECTION("an id the hub does not list") {
    auto r = s.run({party_bin(), "--config", s.party_config("party.yaml", "zz")});
    CHECK(r.code == 2);
    CHECK(r.ms < 5000);
    check_one_line(r, {"pcmoe-party: configuration error: ", "unknown_party", "'zz'", "hub.parties",
                       "fix party.id (" + where(s.path() + "/party.yaml", "id: zz")});
  }
  SECTION("no hub listening: exit 3 after party.hub_timeout_ms") {
    auto cfg = s.party_config("party.yaml", "a", "tcp://127.0.0.1:" + test::free_port());
    auto r = s.run({party_bin(), "--config", cfg, "--set", "party.hub_timeout_ms=1500"});
    CHECK(r.code == 3);
    CHECK(r.ms < 8000);
    check_one_line(r, {"pcmoe-party: transport error: ", "no welcome from the hub", "within 1500 ms"});
  }
  hub->signal(SIGTERM);
  CHECK(hub->wait(10000) == 0);
}

TEST_CASE("config errors: a party whose CURVE key the hub does not list exits 2 at once saying which key",
          "[integration][config]") {
  Setup s;
  // Keys as an operator makes them: pcmoe-ctl keygen prints the public key.
  auto keygen = [&](const std::string& name) {
    const std::string out = s.path() + "/" + name + ".pub.txt";
    test::Process p({test::app("pcmoe-ctl"), "keygen", "--out", s.path() + "/" + name}, out, out + ".err");
    REQUIRE(p.wait(15000) == 0);
    auto lines = test::non_empty_lines(test::read_or_empty(out));
    REQUIRE(lines.size() == 1);
    REQUIRE(lines[0].size() == 40);
    return lines[0];
  };
  const std::string hub_pub = keygen("hub.key");
  const std::string a_pub = keygen("a.key");
  const std::string b_pub = keygen("b.key");
  const std::string other_pub = keygen("other.key");
  auto hub = s.start_hub(s.hub_config("hub.yaml", "", "  secret_key_file: hub.key\n",
                                      "    - id: a\n      public_key: \"" + a_pub +
                                          "\"\n    - id: b\n      public_key: \"" + b_pub + "\"\n"));
  // Party a with another key pair than the one the hub lists for it.
  auto cfg =
      s.party_config("party.yaml", "a", "",
                     "  curve:\n    secret_key_file: other.key\n    hub_public_key: \"" + hub_pub + "\"\n");
  auto r = s.run({party_bin(), "--config", cfg});
  CHECK(r.code == 2);
  CHECK(r.ms < 5000);
  check_one_line(r, {"pcmoe-party: configuration error: ", other_pub, s.path() + "/other.key", "hub.parties",
                     "public_key", "pcmoe-ctl keygen"});
  hub->signal(SIGTERM);
  CHECK(hub->wait(10000) == 0);
}
