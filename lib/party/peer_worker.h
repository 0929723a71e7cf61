// Owns one requester-side connection to one expert host on a thread of its own: the DEALER (only
// that thread touches it), the messages the requester queued for the host (encoded by the caller,
// sent in order, retried in 50 ms slices until request_timeout_ms, after which a send failure is
// reported), and the host's replies, decoded there (the decoder's checks, NaN scan included) so
// that several hosts' replies are decoded in parallel. Each reply goes to the PeerInbox it shares
// with the requester's other workers, after the inbox's sink for it (if any) has run on this
// thread. Thread-safe: send() from any thread.
#pragma once

#include <zmq.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "net/socket.h"
#include "party/expert_link.h"
#include "proto/codec.h"

namespace pcmoe::party {

// What the workers of one requester deliver: replies (or send failures) of every host, in arrival
// order, and the sinks the requester registered for particular replies.
class PeerInbox {
 public:
  using Clock = std::chrono::steady_clock;
  struct Entry {
    uint32_t host = 0;
    Clock::time_point at;
    std::optional<proto::Message> message;
    std::string error;  // a send failure or an undecodable reply (message empty)
  };
  // Registers a sink for one reply (replacing any for the same request).
  void set_sink(const Expected& e, ReplySink sink);
  void clear_sinks();
  // From a worker: runs the matching sink (outside the lock), then queues the message.
  void deliver(uint32_t host, proto::Message m);
  void fail(uint32_t host, std::string why);
  // The first entry for one of `pending` (its index and the entry), waiting up to timeout;
  // entries for `pending`'s hosts that answer none of them and are older than `stale` are dropped.
  // wake() makes a take in progress (or the next) return nullopt at once.
  std::optional<std::pair<size_t, Entry>> take(const std::vector<Expected>& pending,
                                               std::chrono::milliseconds timeout,
                                               std::chrono::milliseconds stale);
  void wake();

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Entry> entries_;
  std::vector<std::pair<Expected, ReplySink>> sinks_;
  bool woken_ = false;
};

class PeerWorker {
 public:
  PeerWorker(zmq::context_t& ctx, const net::ClientOptions& options, const proto::Limits& limits,
             PeerInbox& inbox, uint32_t host, int request_timeout_ms);
  ~PeerWorker();  // stops the thread; queued messages are dropped
  PeerWorker(const PeerWorker&) = delete;
  PeerWorker& operator=(const PeerWorker&) = delete;

  // `traced`: the request's trace key (party/trace_keys.h), stamped when ZeroMQ takes it.
  void send(std::vector<proto::Blob> frames, std::pair<uint64_t, char> traced = {0, 0});
  uint64_t bytes_sent() const { return client_->bytes_sent(); }
  uint64_t bytes_received() const { return client_->bytes_received(); }

 private:
  void loop();
  void flush();
  void receive();

  std::unique_ptr<net::Client> client_;
  proto::Limits limits_;
  PeerInbox& inbox_;
  uint32_t host_;
  int request_timeout_ms_;
  int wake_fd_ = -1;
  std::mutex mu_;
  struct Outgoing {
    std::vector<proto::Blob> frames;
    std::chrono::steady_clock::time_point queued;
    std::pair<uint64_t, char> traced;
  };
  std::deque<Outgoing> outbox_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace pcmoe::party
