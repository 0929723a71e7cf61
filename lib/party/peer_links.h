// Owns the requester's ZeroMQ connections to the other parties' expert services: one DEALER per
// peer, (re)connected from the hub's directory with the peer's CURVE key, and the ExpertLink
// implementation over them (send, and wait for the matching reply with a timeout, discarding
// late answers to abandoned requests). While it waits it calls an idle hook, through which the
// daemon keeps heartbeating the hub. Used by the party's main thread only.
#pragma once

#include <zmq.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "net/curve.h"
#include "net/socket.h"
#include "party/expert_link.h"
#include "proto/codec.h"

namespace pcmoe::party {

struct PeerLinksOptions {
  uint32_t self = 0;
  int request_timeout_ms = 30000;
  std::optional<net::CurveKeyPair> curve;  // this party's keys (CURVE on)
  proto::Limits limits;                    // for decoding replies
};

class PeerLinks : public ExpertLink {
 public:
  PeerLinks(zmq::context_t& ctx, PeerLinksOptions options);

  // Applies a directory: connects new peers, reconnects peers whose endpoint or key changed,
  // records liveness. Throws ConfigError for a bad endpoint in the directory.
  void update(const std::vector<proto::PartyEntry>& directory);
  // Called about every 50 ms while send() or wait() block, also while replies keep arriving (a
  // host answering `busy` again and again): the daemon heartbeats the hub through it.
  void set_idle_hook(std::function<void()> hook) { idle_ = std::move(hook); }
  std::string peer_id(uint32_t host) const;

  void send(uint32_t host, const proto::Message& msg) override;
  proto::Message wait(uint32_t host, proto::MsgType expect, uint64_t request_id) override;
  uint64_t bytes_sent() const override;
  uint64_t bytes_received() const override;

 private:
  struct Peer {
    std::string id;
    std::string endpoint;
    std::string key;
    bool alive = true;
    std::unique_ptr<net::Client> client;
  };
  Peer& peer(uint32_t host);
  // Runs the idle hook if it has not run for kIdleEveryMs.
  void idle();

  zmq::context_t& ctx_;
  PeerLinksOptions opt_;
  std::map<uint32_t, Peer> peers_;
  std::function<void()> idle_;
  std::chrono::steady_clock::time_point last_idle_{};
  uint64_t closed_sent_ = 0, closed_received_ = 0;  // bytes of clients replaced since
};

}  // namespace pcmoe::party
