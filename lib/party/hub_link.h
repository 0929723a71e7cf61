// Owns a party's connection to its hub, on a thread of its own: the DEALER (only that thread
// touches it), heartbeats every heartbeat_ms with the state the main thread publishes — also while
// the main thread is inside a long training step —, the hub's messages (decoded, stamped with their
// arrival time and queued for the main thread) and the main thread's messages to the hub (queued,
// sent in order). It also keeps which party indices the hub's latest directory marks lost, so that
// the expert calls of a step in progress stop waiting for a host the hub has declared lost (the
// directory itself is applied by the main thread at the step boundary, PartySession), and the
// hub's latest turn notice (protocol 1.2: who holds the turn, for which global steps), which the
// expert host may consult from its own thread at any moment to admit only the turn's holder; turn
// notices are consumed here and never reach the inbox.
// Thread-safety: every public method may be called from any thread.
#pragma once

#include <zmq.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "net/socket.h"
#include "proto/codec.h"

namespace pcmoe::party {

class HubLink {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;

  // A message from the hub and when it arrived. (One that does not decode is logged as
  // party.bad_hub_message and dropped; it does not count as hearing from the hub.)
  struct Received {
    TimePoint at;
    proto::Message message;
  };

  // Connects (asynchronously) and starts the thread. Throws ConfigError (bad endpoint or keys)
  // or TransportError.
  HubLink(zmq::context_t& ctx, const net::ClientOptions& options, const proto::Limits& limits,
          int heartbeat_ms);
  ~HubLink();  // stops the thread; messages still queued are dropped
  HubLink(const HubLink&) = delete;
  HubLink& operator=(const HubLink&) = delete;

  // Queues `m` for the hub; the link thread sends it within send_timeout_ms or logs
  // party.hub_send_failed (the protocol's timeouts cover a lost message).
  void send(proto::Message m, int send_timeout_ms = 1000);
  // The next thing the hub sent, waiting up to timeout_ms; nullopt on timeout.
  std::optional<Received> poll(int timeout_ms);
  // Heartbeats: off until enabled (after the welcome), then every heartbeat_ms with these values.
  void set_heartbeat(bool enabled, const std::string& state, int64_t step);
  // When the hub was last heard from (any message); the link's start before that.
  TimePoint last_heard() const;
  // CURVE: the hub refused this party's key since the last attempt.
  bool refused() const { return refused_.load(); }
  // CURVE: handshakes with the hub keep failing without a verdict and none ever succeeded: the
  // hub's public key configured here is most likely not the key of the hub at this endpoint.
  bool server_key_suspect() const { return server_key_suspect_.load(); }
  // Per the hub's latest directory (or welcome): the party with this index is marked lost.
  bool party_lost(uint32_t index) const;
  // The hub's latest turn notice (holders empty: between turns); nullopt before the first one.
  std::optional<proto::TurnNotice> current_turn() const;

 private:
  struct Outgoing {
    proto::Message message;
    int timeout_ms = 1000;
  };
  void loop();
  void send_now(const Outgoing& o);
  void heartbeat_if_due();
  void note_liveness(const proto::Message& m);

  std::unique_ptr<net::Client> client_;  // the link thread's alone once it runs
  proto::Limits limits_;
  int heartbeat_ms_;
  int wake_fd_ = -1;  // eventfd: the main thread queued something

  mutable std::mutex mu_;  // guards everything below
  std::condition_variable inbox_cv_;
  std::deque<Received> inbox_;
  std::deque<Outgoing> outbox_;
  bool hb_enabled_ = false;
  std::string hb_state_ = "connecting";
  int64_t hb_step_ = 0;
  uint64_t hb_seq_ = 0;
  TimePoint last_heard_;
  std::vector<bool> lost_;
  std::optional<proto::TurnNotice> turn_;

  std::chrono::steady_clock::time_point last_hb_sent_{};
  std::atomic<bool> refused_{false};
  std::atomic<bool> server_key_suspect_{false};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace pcmoe::party
