// Owns the requester's view of the expert hosts: an interface to send a message to the party with
// a given index and to wait for its reply, implemented over ZeroMQ by PeerLinks (peer_links.h)
// and in-process by tests. Keeping this small lets the dispatcher and the trainer be tested
// without sockets.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "common/error.h"
#include "proto/messages.h"

namespace pcmoe::party {

// A host failed to answer (timeout, lost, refused): the step fails and the hub learns the suspect.
class HostError : public TransportError {
 public:
  HostError(uint32_t host, const std::string& what) : TransportError(what), host_(host) {}
  uint32_t host() const { return host_; }

 private:
  uint32_t host_;
};

// One reply a requester waits for: from `host`, of type `expect`, for `request_id` (for step_end
// and step_abort acks: the step).
struct Expected {
  uint32_t host = 0;
  proto::MsgType expect = proto::MsgType::expert_forward_reply;
  uint64_t request_id = 0;
};

// Does `m` answer `e` (the reply itself, or the ErrorMsg a host sent for that request)?
bool reply_matches(const proto::Message& m, const Expected& e);

// Work to do with one reply as soon as it has arrived and decoded (e.g. copy it into staging
// memory), on whichever thread the link receives on.
using ReplySink = std::function<void(const proto::Message&)>;

class ExpertLink {
 public:
  virtual ~ExpertLink() = default;
  // Queues `msg` for the host with party index `host`. Throws TransportError if it cannot.
  virtual void send(uint32_t host, const proto::Message& msg) = 0;
  // The same on one of the link's connections to that host (`lane` modulo their number): messages
  // on one lane arrive in the order sent; a request and its backward go on the same lane (a host
  // without authentication keys kept rows by connection). Links with one connection ignore it.
  virtual void send_on(uint32_t host, uint32_t lane, const proto::Message& msg) {
    (void)lane;
    send(host, msg);
  }
  // The reply of `host` to the request identified by (expect, request_id) — for step_end and
  // step_abort acks, request_id is the step. Returns the reply, or the ErrorMsg the host sent for
  // it. Throws TransportError on timeout or when the host is lost. Unrelated replies (late answers
  // to abandoned requests) are discarded.
  virtual proto::Message wait(uint32_t host, proto::MsgType expect, uint64_t request_id) = 0;
  // The first of `pending` (non-empty) to be answered, whichever host answers first: its index in
  // `pending` and the reply (or the host's ErrorMsg for it). Throws TransportError (HostError) when
  // none is answered within the request timeout, or when one of their hosts is lost.
  virtual std::pair<size_t, proto::Message> wait_any(const std::vector<Expected>& pending) = 0;
  // Asks the link to run `sink` on the reply to `e` as soon as it is decoded, before wait / wait_any
  // return it (the sink must be thread-safe against the caller). Returns false if this link does
  // not (the caller then handles the reply itself); sinks never run for replies that do not come.
  virtual bool set_sink(const Expected& e, ReplySink sink) { return false; }
  // Forgets every sink not yet run (those of an abandoned step).
  virtual void clear_sinks() {}
  virtual uint64_t bytes_sent() const = 0;
  virtual uint64_t bytes_received() const = 0;
};

}  // namespace pcmoe::party
