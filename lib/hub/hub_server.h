// Owns the hub daemon's I/O loop: the ROUTER socket bound at hub.bind (CURVE with the hub's key
// pair unless hub.insecure: allowed clients are the configured parties' keys and the operators'
// keys — hub.operators and hub.ctl_key_file —, never the hub's own; it sends no ZMTP PINGs: the
// parties' DEALERs do), and a loop that receives with a short timeout, feeds HubState,
// sends what it returns and ticks it. Stops: when the run has finished (and hub.exit_when_done, or
// the stop came from a signal); a first stop request (SIGINT/SIGTERM, request_stop()) starts the
// operator end sequence, a second one leaves at once after writing hub_state.json.
// With hub.http set it also serves the read-only status page (http_server.h) on its own thread:
// run() publishes a copy of the state (HubView) to it every kPublishMs and at the end.
// At start it writes <out_dir>/ctl.json: the endpoint to connect to, the hub's public key and the
// operator key pair file of this host (hub.ctl_key_file) that pcmoe-ctl needs with CURVE, the status
// page URL, run id and pid (`pcmoe-ctl --run DIR` reads it).
// Threading: run() owns the socket on the calling thread; construct it anywhere, then call run()
// on one thread; only request_stop() may be called from other threads.
#pragma once

#include <zmq.hpp>

#include <atomic>
#include <map>
#include <memory>
#include <string>

#include "common/hub_config.h"
#include "hub/http_server.h"
#include "hub/hub_state.h"
#include "hub/hub_store.h"
#include "hub/hub_view.h"
#include "net/socket.h"

namespace pcmoe::hub {

struct HubServerOptions {
  HubTimeouts timeouts;
  int poll_ms = 50;         // receive timeout between ticks
  bool use_signals = true;  // SIGINT/SIGTERM (common/signals.h) request a stop
  std::string run_id;       // "" = made from the start time and the pid
};

class HubServer {
 public:
  // Reads the key file, binds and creates out_dir. Throws ConfigError (bad keys or endpoint),
  // TransportError (bind failed) or pcmoe::Error (out_dir).
  HubServer(const HubConfig& cfg, zmq::context_t& ctx, HubServerOptions options = {});
  ~HubServer();
  HubServer(const HubServer&) = delete;
  HubServer& operator=(const HubServer&) = delete;

  static constexpr int kPublishMs = 250;

  const std::string& endpoint() const { return endpoint_; }
  // The status page's URL, "" without hub.http.
  std::string http_url() const { return http_ ? http_->url() : std::string(); }
  const std::string& run_id() const { return run_id_; }
  // The hub's CURVE public key ("" without CURVE).
  const std::string& public_key() const { return public_key_; }

  // Serves until done (see above). Returns the exit code (0). Throws TransportError.
  int run();
  // Thread-safe: the first call starts the operator stop, the second leaves run() at once.
  void request_stop() { stop_requests_.fetch_add(1); }

  // After run() returned (or before it started): the state, for tests.
  const HubState& state() const { return *state_; }

 private:
  void deliver(const std::vector<Outgoing>& out);
  bool serve_once(int timeout_ms);
  void publish(TimePoint now);
  void start_http();
  void write_ctl_file();

  HubConfig cfg_;
  HubServerOptions options_;
  std::string run_id_;
  std::string public_key_;
  FileHubStore store_;
  std::unique_ptr<net::Server> server_;
  std::unique_ptr<HubState> state_;
  proto::Limits limits_;
  std::string endpoint_;
  std::atomic<int> stop_requests_{0};
  uint64_t send_failures_ = 0;
  StatusBoard board_;  // declared before http_: the server reads it until it is destroyed
  std::unique_ptr<HttpStatusServer> http_;
  TimePoint last_publish_{};
};

// With CURVE: the operators' public keys (hub.operators, and hub.ctl_key_file's as "ctl") -> their
// ids. Throws ConfigError for an operator key that is the hub's own or a party's (or an unreadable
// ctl_key_file); logs hub.no_operator when there is none.
std::map<std::string, std::string> operator_keys(const HubConfig& cfg, const std::string& hub_key);

// "20260301T120501Z-4242": UTC start time and pid.
std::string make_run_id();

}  // namespace pcmoe::hub
