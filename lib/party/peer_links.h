// Owns the requester's ZeroMQ connections to the other parties' expert services: links_per_host
// PeerWorkers per peer (each a DEALER on a thread of its own, peer_worker.h; several connections
// carry one host's requests in parallel, each in order), (re)connected from the hub's directory
// with the peer's CURVE key, and the ExpertLink implementation over them: send (queued to the
// peer's worker), sinks that stage replies on the workers' threads as they arrive, and waits for
// the matching reply with a timeout (late answers to abandoned requests are dropped). A wait ends early when
// the host is marked lost, by the directory last applied or by a liveness probe (the hub link's latest
// directory, which arrives while a step runs). Used by the party's main thread (and, on CUDA, libtorch's
// autograd thread while the main thread is blocked in backward()), one at a time.
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
#include "party/peer_worker.h"
#include "proto/codec.h"

namespace pcmoe::party {

struct PeerLinksOptions {
  uint32_t self = 0;
  int request_timeout_ms = 30000;
  std::optional<net::CurveKeyPair> curve;  // this party's keys (CURVE on)
  proto::Limits limits;                    // for decoding replies
  int links_per_host = 1;                  // connections (and worker threads) to each host
};

class PeerLinks : public ExpertLink {
 public:
  PeerLinks(zmq::context_t& ctx, PeerLinksOptions options);
  ~PeerLinks() override;
  PeerLinks(const PeerLinks&) = delete;
  PeerLinks& operator=(const PeerLinks&) = delete;

  // Applies a directory: connects new peers, reconnects peers whose endpoint or key changed,
  // records liveness. Throws ConfigError for a bad endpoint in the directory.
  void update(const std::vector<proto::PartyEntry>& directory);
  // Asked about every 50 ms while send() or wait() block: true if the host with this index is
  // lost (HubLink::party_lost). Must be thread-safe and cheap; it does no hub work.
  void set_lost_probe(std::function<bool(uint32_t)> probe) { lost_probe_ = std::move(probe); }
  std::string peer_id(uint32_t host) const;

  void send(uint32_t host, const proto::Message& msg) override { send_on(host, 0, msg); }
  void send_on(uint32_t host, uint32_t lane, const proto::Message& msg) override;
  proto::Message wait(uint32_t host, proto::MsgType expect, uint64_t request_id) override;
  std::pair<size_t, proto::Message> wait_any(const std::vector<Expected>& pending) override;
  bool set_sink(const Expected& e, ReplySink sink) override;
  void clear_sinks() override { inbox_.clear_sinks(); }
  uint64_t bytes_sent() const override;
  uint64_t bytes_received() const override;

 private:
  struct Peer {
    std::string id;
    std::string endpoint;
    std::string key;
    bool alive = true;
    std::vector<std::unique_ptr<PeerWorker>> workers;  // links_per_host connections (lanes)
  };
  Peer& peer(uint32_t host);
  // Throws HostError if the host is marked lost (`what` says where we were).
  void check_alive(uint32_t host, const Peer& p, const char* what) const;

  zmq::context_t& ctx_;
  PeerLinksOptions opt_;
  int waker_ = -1;   // registered with the process's BackwardGate
  PeerInbox inbox_;  // before peers_: the workers, which deliver into it, are destroyed first
  std::map<uint32_t, Peer> peers_;
  std::function<bool(uint32_t)> lost_probe_;
  uint64_t closed_sent_ = 0, closed_received_ = 0;  // bytes of clients replaced since
};

}  // namespace pcmoe::party
