// Owns server-side CURVE authentication: a ZAP handler (RFC 27) thread bound to
// inproc://zeromq.zap.01 in one zmq context. Each CURVE Server registers a ZAP domain with an
// allow-list of client public keys (Z85); the handler accepts a handshake only when the client's
// key is in its domain's list, or any key when that list is empty (logged once per domain as
// "net.curve_any_client"). Accepted handshakes get the client key (Z85) as ZMQ "User-Id", so every
// message from that connection carries it (Incoming::curve_key). Denied handshakes are logged as
// "net.auth_denied" with the key and peer address; the client never gets a connection.
// Threading: one handler thread per context, shared by its Servers (for_context); the
// allow-lists are guarded by a mutex, so every method is thread-safe. The context must outlive
// the handler (Servers hold it, so: destroy Servers before their context).
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

namespace pcmoe::net {

class ZapHandler {
 public:
  // The handler of `ctx`, started on first use; it stops when the last holder releases it.
  // Throws TransportError if another ZAP handler (not ours) is bound in this context.
  static std::shared_ptr<ZapHandler> for_context(zmq::context_t& ctx);

  ~ZapHandler();
  ZapHandler(const ZapHandler&) = delete;
  ZapHandler& operator=(const ZapHandler&) = delete;

  // Sets (replaces) the allow-list of `domain`. Throws ConfigError on a key that is not Z85.
  void set_domain(const std::string& domain, const std::vector<std::string>& allowed_keys);
  void remove_domain(const std::string& domain);
  // A fresh domain name for a new Server ("pcmoe.<n>").
  static std::string new_domain();

  uint64_t n_accepted() const { return accepted_.load(); }
  uint64_t n_denied() const { return denied_.load(); }

 private:
  explicit ZapHandler(zmq::context_t& ctx);
  void run();
  // Decides one ZAP request; returns the reply status code ("200" / "400") and the user id.
  std::pair<std::string, std::string> decide(const std::string& domain, const std::string& address,
                                             const std::string& mechanism, const std::string& key_z85);
  void handle(zmq::socket_t& rep);

  zmq::socket_t rep_;  // bound in the constructor, then owned by thread_
  int wake_fds_[2] = {-1, -1};
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> accepted_{0}, denied_{0};
  std::mutex mu_;
  std::map<std::string, std::set<std::string>> domains_;  // domain -> allowed keys (empty: any)
  std::thread thread_;
};

}  // namespace pcmoe::net
