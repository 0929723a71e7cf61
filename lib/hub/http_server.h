// Owns the hub's read-only HTTP service (hub.http): a cpp-httplib server bound to exactly the
// configured address, on its own listening thread with 2 worker threads. It answers GET with the
// latest HubView that the hub's main thread published on a StatusBoard (never HubState itself):
//   /             the status page (status_page.h)      /status.json  the status JSON (http_render.h)
//   /metrics      Prometheus text metrics               /healthz      "ok" once a view is published
// Anything else: 404; any other method: 405. There is no control action.
// Built without cpp-httplib (-DPCMOE_HTTP=OFF), the constructor throws ConfigError instead.
// Thread-safety: construct and destroy on one thread; the board is read from the worker threads.
#pragma once

#include <memory>
#include <string>

#include "common/hub_config.h"
#include "hub/hub_view.h"

namespace pcmoe::hub {

class HttpStatusServer {
 public:
  // Binds now (port 0: a free port) and starts serving. Throws TransportError if the address cannot
  // be bound, ConfigError if this build has no HTTP support. `board` must outlive the server.
  HttpStatusServer(const HttpAddress& address, const StatusBoard& board);
  ~HttpStatusServer();  // stops serving and joins the threads
  HttpStatusServer(const HttpStatusServer&) = delete;
  HttpStatusServer& operator=(const HttpStatusServer&) = delete;

  int port() const { return port_; }
  std::string url() const;  // "http://127.0.0.1:PORT/"

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string host_;
  int port_ = 0;
};

}  // namespace pcmoe::hub
