// Owns a party's expert service: the ROUTER socket other parties send expert requests to, and four
// threads that serve them at any time — also while this party trains — through the ExpertHost:
// the I/O thread owns the socket: it receives, decodes defensively (proto::decode with the
// model's limits; a bad message gets an ErrorMsg reply at once and one rate-limited log line)
// and sends the replies; the staging thread stages each request's tensor for the device
// (ExpertHost::prepare: a copy into pinned memory); the compute thread launches the requests in
// arrival order (ExpertHost::launch: admission, the device work and the copies of the results to
// pinned memory, without waiting for the device); the completion thread waits for each launched
// request in turn and builds its reply (ExpertHost::complete). So a host receives one request,
// stages another, launches a third and sends the last reply while the device computes. Until the
// host is installed (after the hub's welcome, once the trainer is built) requests get `busy`
// (retry later). The socket is bound in the constructor (so the endpoint can go into the hello).
#pragma once

#include <zmq.hpp>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "net/rpc.h"
#include "net/socket.h"
#include "party/expert_host.h"
#include "proto/codec.h"

namespace pcmoe::party {

class ExpertServer {
 public:
  // Binds. Throws ConfigError (bad endpoint/keys) or TransportError (bind failed, e.g. port in use).
  ExpertServer(zmq::context_t& ctx, const net::ServerOptions& options, const proto::Limits& limits);
  ~ExpertServer();  // stops the thread
  ExpertServer(const ExpertServer&) = delete;
  ExpertServer& operator=(const ExpertServer&) = delete;

  const std::string& endpoint() const { return endpoint_; }
  // Starts serving (requests before install() get `busy`).
  void start();
  // Installs the host (after the welcome). Thread-safe.
  void install(ExpertHost* host);
  // CURVE key -> party id of the directory's parties; also the allowed client keys. Thread-safe.
  void set_parties(const std::map<std::string, std::string>& key_to_id);
  void stop();
  uint64_t requests() const { return requests_.load(); }
  uint64_t bad_messages() const { return bad_.load(); }

 private:
  // A request from the I/O thread to the staging thread (request.message only) and, staged, from
  // there to the compute thread.
  struct Work {
    std::string peer, sender;
    ExpertHost::Prepared request;
    std::chrono::steady_clock::time_point received;
  };
  void loop();
  void stage_loop();
  void compute_loop();
  void complete_loop();
  // Handles one decoded request on the I/O thread: a reply now (busy), or work for the staging thread.
  void take(net::Request& req, std::chrono::steady_clock::time_point received);
  void send_replies();
  size_t queued();
  // The request trace (common/trace.h): a request's pick-up (before its decode) and decode.
  static void trace_received(const net::Request& req, int64_t pick_ns);

  std::unique_ptr<net::Server> server_;
  std::string endpoint_;
  proto::Limits limits_;
  std::atomic<ExpertHost*> host_{nullptr};
  std::mutex keys_mu_;
  std::map<std::string, std::string> key_to_id_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> requests_{0}, bad_{0};
  std::mutex work_mu_;
  std::condition_variable work_cv_;
  std::condition_variable stage_cv_;
  std::deque<Work> incoming_;  // decoded, not yet staged (by work_mu_)
  std::deque<Work> work_;
  std::condition_variable launched_cv_;
  std::deque<std::pair<std::string, std::unique_ptr<ExpertHost::Launched>>> launched_;  // by work_mu_
  std::deque<std::pair<std::string, proto::Message>> replies_;                          // guarded by work_mu_
  int wake_fd_ = -1;  // eventfd: a reply is ready
  std::thread thread_, stage_, compute_, complete_;
};

}  // namespace pcmoe::party
