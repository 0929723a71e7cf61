// The hub's HTTP service over cpp-httplib (see http_server.h).
#include "hub/http_server.h"

#include <fmt/format.h>

#include "common/error.h"

#if PCMOE_WITH_HTTP
#include <httplib.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "hub/http_render.h"
#include "hub/status_page.h"
#endif

namespace pcmoe::hub {

std::string HttpStatusServer::url() const {
  HttpAddress a;
  a.host = host_;
  return fmt::format("http://{}:{}/", a.url_host(), port_);
}

#if PCMOE_WITH_HTTP

struct HttpStatusServer::Impl {
  httplib::Server server;
  std::thread thread;
  std::atomic<bool> done{false};
};

namespace {

void serve_view(const StatusBoard& board, httplib::Response& res, const char* type,
                std::string (*render)(const HubView&)) {
  auto view = board.latest();
  if (!view) {
    res.status = 503;
    res.set_content("the hub has not published its state yet\n", "text/plain");
    return;
  }
  res.set_content(render(*view), type);
}

void routes(httplib::Server& s, const StatusBoard& board) {
  s.set_default_headers({{"Cache-Control", "no-store"},
                         {"X-Content-Type-Options", "nosniff"},
                         {"Content-Security-Policy",
                          "default-src 'none'; connect-src 'self'; style-src 'unsafe-inline'; "
                          "script-src 'unsafe-inline'; img-src 'self'"}});
  s.Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(status_page_html(), "text/html; charset=utf-8");
  });
  s.Get("/status.json", [&board](const httplib::Request&, httplib::Response& res) {
    serve_view(board, res, "application/json", view_json);
  });
  s.Get("/metrics", [&board](const httplib::Request&, httplib::Response& res) {
    serve_view(board, res, "text/plain; version=0.0.4; charset=utf-8", view_metrics);
  });
  s.Get("/healthz", [&board](const httplib::Request&, httplib::Response& res) {
    const bool ready = board.latest() != nullptr;
    res.status = ready ? 200 : 503;
    res.set_content(ready ? "ok\n" : "starting\n", "text/plain");
  });
  // Read-only: every other method is refused, whatever the path.
  auto refuse = [](const httplib::Request&, httplib::Response& res) {
    res.status = 405;
    res.set_header("Allow", "GET, HEAD");
    res.set_content("read-only: the pcmoe hub's HTTP service takes no action (use pcmoe-ctl)\n",
                    "text/plain");
  };
  s.Post(".*", refuse);
  s.Put(".*", refuse);
  s.Patch(".*", refuse);
  s.Delete(".*", refuse);
  s.Options(".*", refuse);
  s.set_exception_handler([](const httplib::Request&, httplib::Response& res, const std::exception_ptr&) {
    res.status = 500;
    res.set_content("internal error\n", "text/plain");
  });
}

}  // namespace

HttpStatusServer::HttpStatusServer(const HttpAddress& address, const StatusBoard& board)
    : impl_(std::make_unique<Impl>()), host_(address.host) {
  httplib::Server& s = impl_->server;
  s.new_task_queue = [] { return new httplib::ThreadPool(2); };
  // cpp-httplib sets SO_REUSEPORT by default, which lets a second hub bind the same port and take
  // half of the requests: only SO_REUSEADDR (a restart may rebind while old connections linger).
  s.set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  s.set_payload_max_length(4096);
  s.set_read_timeout(5, 0);
  s.set_write_timeout(5, 0);
  s.set_keep_alive_max_count(20);
  routes(s, board);
  port_ = address.port == 0 ? s.bind_to_any_port(address.host) : address.port;
  const bool bound = address.port == 0 ? port_ > 0 : s.bind_to_port(address.host, address.port);
  if (!bound) {
    throw TransportError(
        fmt::format("hub.http: cannot listen on {}:{} (in use, or not an address of this host)",
                    address.url_host(), address.port));
  }
  impl_->thread = std::thread([this] {
    impl_->server.listen_after_bind();
    impl_->done.store(true);
  });
}

HttpStatusServer::~HttpStatusServer() {
  // stop() does nothing until the listening thread has started running: repeat it until it ends.
  while (!impl_->done.load()) {
    impl_->server.stop();
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  impl_->thread.join();
}

#else  // built without cpp-httplib

struct HttpStatusServer::Impl {};

HttpStatusServer::HttpStatusServer(const HttpAddress& address, const StatusBoard&) : host_(address.host) {
  throw ConfigError(
      "hub.http is set, but this pcmoe-hub was built without HTTP support (cmake -DPCMOE_HTTP=OFF; "
      "install libcpp-httplib-dev and rebuild), or leave hub.http empty");
}

HttpStatusServer::~HttpStatusServer() = default;

#endif

}  // namespace pcmoe::hub
