// A real federation for integration tests: pcmoe-hub from configs/hub.yaml bound to
// tcp://127.0.0.1:* (its endpoint read from its hub.started log line, so there is no port race)
// and pcmoe-party processes from configs/party-<id>.yaml, each with its out_dir, log file and
// stdout/stderr files under one directory, started and restarted individually; CURVE with keys of
// its own (options.curve) or plain mode. Every process is
// a test::Process: the Federation's destruction SIGKILLs whatever still runs.
#pragma once

#include <catch2/catch.hpp>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "process.h"
#include "proto/messages.h"

namespace pcmoe::test {

struct FederationOptions {
  std::vector<std::string> shared;  // --set for every participant (model.* and train.*)
  std::vector<std::string> hub;     // --set for the hub only
  std::vector<std::string> party;   // --set for every party
  std::vector<std::string> ids = {"a", "b", "c"};
  // CURVE with keys made in <root>/keys (hub, operator, party-<id>), as the shipped configs do;
  // false: plain mode (hub.insecure, party.insecure: loopback only).
  bool curve = false;
};

// Small and fast: 4 x 64-token sequences per step; the SAME on every participant (the hub
// compares the preset hash).
std::vector<std::string> tiny_overrides(int steps, int eval_every);

// tiny_overrides(steps, 0) with small timeouts, for fault and signal tests: a party silent 3 s is
// lost; a requester waits 6 s for a host (longer, so it keeps heartbeating while a dead host makes
// it wait); a party outlasts 30 s without the hub. Snapshots every `snapshot_every` steps, the
// parties' heartbeat interval as given, `hub_extra` added to the hub's overrides.
FederationOptions fault_options(int steps, int snapshot_every, int party_heartbeat_ms,
                                const std::vector<std::string>& hub_extra = {});

class Federation {
 public:
  Federation(std::string root, FederationOptions options);
  // Kills what still runs; with PCMOE_TEST_KEEP=DIR set, first copies root into DIR (debugging).
  ~Federation();
  Federation(const Federation&) = delete;
  Federation& operator=(const Federation&) = delete;

  // Starts the hub and waits (up to timeout_ms) for its endpoint; false if it did not come up.
  bool start_hub(int timeout_ms = 30000);
  // Starts the hub again (the previous one must have exited) on the same endpoint, hub.out_dir and
  // log, with extra --set values; true once it logged hub.started, false if it exited first (its
  // exit code is then in hub()).
  bool restart_hub(const std::vector<std::string>& extra = {}, int timeout_ms = 30000);
  // Starts (or restarts, once the previous one has exited) party `id`, with extra --set values;
  // `wrapper` (e.g. {"prlimit", "--fsize=4194304"}) is put before the binary and execs it.
  void start_party(const std::string& id, const std::vector<std::string>& extra = {},
                   const std::vector<std::string>& wrapper = {});
  void start_parties();

  Process& hub() { return *hub_; }
  Process& party(const std::string& id) { return *parties_.at(id); }
  const std::string& endpoint() const { return endpoint_; }
  const std::vector<std::string>& ids() const { return options_.ids; }

  std::string hub_dir() const { return root_ + "/hub"; }
  std::string hub_log() const { return root_ + "/hub.log"; }
  std::string party_dir(const std::string& id) const { return root_ + "/party-" + id; }
  std::string party_log(const std::string& id) const { return root_ + "/party-" + id + ".log"; }
  std::string metrics(const std::string& id) const { return party_dir(id) + "/metrics.jsonl"; }

  std::optional<proto::Status> status() const;
  // A control command (pause, resume, checkpoint, snapshot, stop) as the operator; true if acknowledged ok.
  bool control(const std::string& action) const;
  // CURVE (options.curve): the key pair files it made, by name ("hub", "operator", "party-a", ...).
  std::string key_file(const std::string& name) const { return root_ + "/keys/" + name + ".key"; }
  std::string public_key_file(const std::string& name) const { return root_ + "/keys/" + name + ".pub"; }
  // The --set values that give party `id` its keys (CURVE) or plain mode.
  std::vector<std::string> party_security(const std::string& id) const;
  // Polls the hub's status until pred holds; the last status seen (or nullopt) otherwise.
  std::optional<proto::Status> wait_status(const std::function<bool(const proto::Status&)>& pred,
                                           int timeout_ms);
  // Global step from the hub (-1 if it does not answer).
  int64_t step() const;
  // Waits for every process to exit; true if all did within timeout_ms.
  bool wait_all(int timeout_ms);
  // The normal end, checked: every process exits 0 within timeout_ms, every party exported its
  // model (unless !all_exported), and the hub logged hub.finished once, at `steps`, reason
  // "finished". Returns that line (the test has failed if it is empty).
  std::string require_clean_finish(int64_t steps, int timeout_ms = 120000, bool all_exported = true);
  // The tail of every log and stderr file, for failure messages.
  std::string report() const;

 private:
  // Starts pcmoe-hub bound to `bind`; true once a new hub.started line gave its endpoint.
  bool launch_hub(const std::string& bind, const std::vector<std::string>& extra, int timeout_ms);

  void make_keys();

  std::string root_;
  FederationOptions options_;
  std::optional<net::CurveKeyPair> operator_keys_;
  std::string hub_key_;
  std::string endpoint_;
  std::unique_ptr<Process> hub_;
  std::map<std::string, std::unique_ptr<Process>> parties_;
};

// The record of party `id` in a status (nullptr if absent); whether it is alive there.
const proto::PartyStatus* find_party(const proto::Status& s, const std::string& id);
bool alive_in(const proto::Status& s, const std::string& id);

}  // namespace pcmoe::test

// REQUIRE / CHECK that print the tail of every log of `fed` when they fail (the condition is
// evaluated again then, so it must have no side effects).
#define FED_REQUIRE(fed, ...)              \
  do {                                     \
    if (!static_cast<bool>(__VA_ARGS__)) { \
      INFO((fed).report());                \
      REQUIRE(__VA_ARGS__);                \
    }                                      \
  } while (0)
#define FED_CHECK(fed, ...)                \
  do {                                     \
    if (!static_cast<bool>(__VA_ARGS__)) { \
      INFO((fed).report());                \
      CHECK(__VA_ARGS__);                  \
    }                                      \
  } while (0)
