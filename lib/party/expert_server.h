// Owns a party's expert service: the ROUTER socket other parties send expert requests to, and the
// thread that serves them at any time — also while this party trains — through the ExpertHost.
// Every message is decoded defensively (proto::decode with the model's limits); a bad one gets an
// ErrorMsg reply and one rate-limited log line; until the host is installed (after the hub's
// welcome, once the trainer is built) requests get `busy` (retry later). The socket is bound in
// the constructor (so the endpoint can go into the hello) and then owned by the service thread
// alone.
#pragma once

#include <zmq.hpp>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

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
  void loop();

  std::unique_ptr<net::Server> server_;
  std::string endpoint_;
  proto::Limits limits_;
  std::atomic<ExpertHost*> host_{nullptr};
  std::mutex keys_mu_;
  std::map<std::string, std::string> key_to_id_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> requests_{0}, bad_{0};
  std::thread thread_;
};

}  // namespace pcmoe::party
