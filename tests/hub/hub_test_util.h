// Test helpers for lib/hub: a small model config, message builders (hello, step report, snapshot),
// an in-memory HubStore, a manual-clock harness around HubState, a fake party over a real DEALER
// (hello, heartbeats, turns with reports, snapshots, bye) and a HubServer running on a thread.
#pragma once

#include <catch2/catch.hpp>
#include <zmq.hpp>

#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/hub_config.h"
#include "hub/hub_server.h"
#include "hub/hub_state.h"
#include "net/socket.h"
#include "proto/messages.h"

namespace pcmoe::test {

constexpr int kWaitMs = 5000;  // upper bound for things that must happen over sockets

// 2 layers (both MoE), 4 experts, d_model 8, d_ff 16, SwiGLU; parties as given; 12 steps.
HubConfig small_hub_config(const std::vector<std::string>& party_ids, const std::string& out_dir = "");

proto::Hello hello_for(const HubConfig& cfg, const std::string& id);
// Counts where expert e of every layer got (e + 1) * scale tokens.
std::vector<std::vector<uint64_t>> ramp_counts(const HubConfig& cfg, uint64_t scale = 1);
proto::StepReport report_for(const HubConfig& cfg, uint64_t turn_id, int64_t step, uint64_t scale = 1);
// The experts party `index` hosts, each tensor filled with `value`.
proto::Snapshot snapshot_for(const HubConfig& cfg, uint32_t index, uint64_t snapshot_id, int64_t step,
                             float value = 0.5f);

class MemoryStore : public hub::HubStore {
 public:
  void append_expert_load(std::string_view line) override { load_lines.emplace_back(line); }
  void write_pool(const TensorFile& p) override {
    pool = p;
    ++pool_writes;
  }
  void write_state(std::string_view json) override {
    state = std::string(json);
    ++state_writes;
  }
  std::string describe() const override { return "memory"; }

  std::vector<std::string> load_lines;
  std::optional<TensorFile> pool;
  std::string state;
  int pool_writes = 0, state_writes = 0;
};

// The messages of type T in `out` (for `peer` only, unless empty).
template <class T>
std::vector<T> of_type(const std::vector<hub::Outgoing>& out, const std::string& peer = "") {
  std::vector<T> r;
  for (const auto& o : out) {
    if (!peer.empty() && o.peer != peer) continue;
    if (const T* m = std::get_if<T>(&o.message)) r.push_back(*m);
  }
  return r;
}

// The one ErrorMsg / Reject / Turn in `out` (the test fails otherwise).
inline proto::ErrorMsg only_error(const std::vector<hub::Outgoing>& out) {
  auto errors = of_type<proto::ErrorMsg>(out);
  REQUIRE(errors.size() == 1);
  return errors[0];
}
inline proto::Reject only_reject(const std::vector<hub::Outgoing>& out) {
  auto r = of_type<proto::Reject>(out);
  REQUIRE(r.size() == 1);
  REQUIRE(out.size() == 1);
  return r[0];
}
inline proto::Turn the_turn(const std::vector<hub::Outgoing>& out) {
  auto t = of_type<proto::Turn>(out);
  REQUIRE(t.size() == 1);
  return t[0];
}

// HubState driven by hand: a manual clock, peers named "peer-<party id>".
class HubHarness {
 public:
  explicit HubHarness(HubConfig cfg, hub::HubOptions options = {});

  hub::HubState& hub() { return *hub_; }
  MemoryStore& store() { return store_; }
  const HubConfig& cfg() const { return cfg_; }
  hub::TimePoint now() const { return now_; }
  void advance(int ms) { now_ += std::chrono::milliseconds(ms); }
  static std::string peer(const std::string& id) { return "peer-" + id; }

  std::vector<hub::Outgoing> send(const std::string& peer, const proto::Message& m,
                                  const std::string& key = "");
  std::vector<hub::Outgoing> tick() { return hub_->on_tick(now_); }
  // Hello from peer(id); the hub's answers.
  std::vector<hub::Outgoing> join(const std::string& id);
  // Joins every configured party; returns the answers to the last hello (the first Turn is there).
  std::vector<hub::Outgoing> join_all();
  // Plays the turn `t` of its holder to the end (reports for every step, then TurnDone ok).
  std::vector<hub::Outgoing> play(const proto::Turn& t, uint64_t scale = 1);
  // Answers every SnapshotRequest in `out` for every live party (experts filled with 0.25 + its
  // index, at the hub's step); returns `out` followed by the hub's answers.
  std::vector<hub::Outgoing> answer_snapshots(std::vector<hub::Outgoing> out);
  // Heartbeats from every live party (keeps them alive across advance()).
  void heartbeat_all();

 private:
  HubConfig cfg_;
  MemoryStore store_;
  hub::TimePoint now_;
  std::unique_ptr<hub::HubState> hub_;
};

// A party's control connection, scripted: it answers the hub as a real party would.
class FakeParty {
 public:
  FakeParty(zmq::context_t& ctx, const std::string& hub_endpoint, const HubConfig& cfg, std::string id,
            std::optional<net::CurveKeyPair> keys = std::nullopt, const std::string& hub_key = "");

  const std::string& id() const { return id_; }
  bool send(const proto::Message& m);
  std::optional<proto::Message> recv(int timeout_ms);
  // Hello and its answer: the Welcome, or nullopt (then `reject` holds the Reject if one came).
  std::optional<proto::Welcome> join(int timeout_ms = kWaitMs);
  std::optional<proto::Welcome> join_with(const proto::Hello& h, int timeout_ms = kWaitMs);
  // The first message of type T within the timeout; the others are handled by react().
  template <class T>
  std::optional<T> wait_for(int timeout_ms = kWaitMs) {
    auto deadline = hub::Clock::now() + std::chrono::milliseconds(timeout_ms);
    while (hub::Clock::now() < deadline) {
      auto m = recv(remaining(deadline));
      if (!m) continue;
      if (const T* t = std::get_if<T>(&*m)) return *t;
      react(*m);
    }
    return std::nullopt;
  }
  // Receives for up to timeout_ms, reacting to what comes; sends a heartbeat when one is due.
  void pump(int timeout_ms);
  // Reacts like a party: Turn -> reports + TurnDone, SnapshotRequest -> Snapshot, Stop -> Bye.
  void react(const proto::Message& m);

  // ---- behaviour switches ----
  bool auto_turns = true;
  bool auto_snapshot = true;
  bool auto_bye = true;
  bool heartbeats = true;
  int heartbeat_ms = 50;

  // ---- what happened ----
  std::vector<proto::Message> inbox;  // everything received, in order
  std::vector<int64_t> steps_taken;
  std::optional<proto::Reject> reject;
  std::optional<proto::Welcome> welcome;
  bool stopped = false, released = false;
  uint64_t expert_loads = 0;
  int64_t global_step = 0;  // from ExpertLoad: the steps done by the federation

 private:
  static int remaining(hub::TimePoint deadline);
  void maybe_heartbeat();

  const HubConfig& cfg_;
  std::string id_;
  std::string public_key_;  // announced in hello ("" without CURVE)
  std::unique_ptr<net::Client> client_;
  hub::TimePoint last_heartbeat_{};
  uint64_t hb_seq_ = 0;
};

// Pumps every party until pred() holds or timeout_ms passed; returns pred().
bool pump_until(const std::vector<FakeParty*>& parties, const std::function<bool()>& pred,
                int timeout_ms = kWaitMs);

// A HubServer running on its own thread (no signals). The destructor stops it (twice) and joins.
class RunningHub {
 public:
  explicit RunningHub(const HubConfig& cfg, hub::HubServerOptions options = fast_options());
  ~RunningHub();

  static hub::HubServerOptions fast_options();
  const std::string& endpoint() const { return server_->endpoint(); }
  std::string http_url() const { return server_->http_url(); }
  zmq::context_t& ctx() { return ctx_; }
  void request_stop() { server_->request_stop(); }
  // Waits for run() to return; its exit code, or nullopt if it is still running.
  std::optional<int> wait_exit(int timeout_ms);
  // After wait_exit() returned a code: the final state.
  const hub::HubState& state() const { return server_->state(); }

  // One request over a fresh DEALER (like pcmoe-ctl); nullopt if no answer.
  std::optional<proto::Message> ask(const proto::Message& m, int timeout_ms = kWaitMs);
  proto::Status status();

 private:
  zmq::context_t ctx_;
  std::unique_ptr<hub::HubServer> server_;
  std::thread thread_;
  std::promise<int> exit_promise_;
  std::shared_future<int> exit_future_;
};

}  // namespace pcmoe::test
