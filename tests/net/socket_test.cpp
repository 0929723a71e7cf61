// Integration tests of Server/Client over real sockets on ephemeral ports: request/reply with a
// tensor frame, malformed input, vanished peers, ZMQ_MAXMSGSIZE, polling. Synchronisation is by
// poll timeouts and socket-monitor events, never by sleeping.
#include <atomic>
#include <catch2/catch.hpp>
#include <cstring>
#include <future>
#include <thread>

#include "net/monitor.h"
#include "net/poll.h"
#include "net/rpc.h"
#include "proto/wire_tensor.h"

using namespace pcmoe;
using namespace pcmoe::net;
using namespace pcmoe::proto;

namespace {

constexpr int kWaitMs = 5000;  // upper bound for things that must happen

ServerOptions local_server() {
  ServerOptions o;
  o.endpoint = "tcp://127.0.0.1:*";
  return o;
}

ClientOptions client_of(const Server& s) {
  ClientOptions o;
  o.endpoint = s.endpoint();
  return o;
}

ExpertForward forward_request(int64_t rows, int64_t width) {
  ExpertForward f;
  f.request_id = 41;
  f.requester = "alice";
  f.step = 9;
  f.layer = 1;
  std::vector<int32_t> ids(static_cast<size_t>(rows));
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>(i % 4);
  f.expert_ids = make_i32({rows}, ids);
  std::vector<float> x(static_cast<size_t>(rows * width));
  for (size_t i = 0; i < x.size(); ++i) x[i] = 0.5f * static_cast<float>(i);
  f.rows = make_f32({rows, width}, x);
  return f;
}

}  // namespace

TEST_CASE("request/reply round trip with tensor frames", "[integration][net]") {
  zmq::context_t ctx;
  Server server(ctx, local_server());
  CHECK(server.endpoint().rfind("tcp://127.0.0.1:", 0) == 0);
  CHECK(server.endpoint().find('*') == std::string::npos);
  Client client(ctx, client_of(server));

  ExpertForward request = forward_request(64, 32);  // 8 KiB of rows: sent zero-copy
  REQUIRE(send_message(client, request, kWaitMs));
  auto req = recv_request(server, kWaitMs, Limits{});
  REQUIRE(req);
  REQUIRE(req->message);
  CHECK(req->curve_key.empty());
  auto& got = std::get<ExpertForward>(*req->message);
  CHECK(got.request_id == 41);
  CHECK(got.rows.shape == std::vector<int64_t>{64, 32});
  CHECK(std::memcmp(got.rows.data.data, request.rows.data.data, request.rows.data.size) == 0);

  ExpertForwardReply answer{got.request_id, got.rows};  // echo the rows back, zero-copy again
  REQUIRE(reply(server, req->peer, answer));
  auto back = recv_message(client, kWaitMs, Limits{});
  REQUIRE(back);
  auto& out = std::get<ExpertForwardReply>(*back);
  CHECK(out.request_id == 41);
  CHECK(std::memcmp(out.outputs.data.data, request.rows.data.data, request.rows.data.size) == 0);

  CHECK(client.bytes_sent() == server.bytes_received());
  CHECK(server.bytes_sent() == client.bytes_received());
  CHECK(client.bytes_sent() > 64 * 32 * 4);
  CHECK_FALSE(client.recv(0));  // nothing else queued: a timeout is a value
}

TEST_CASE("a malformed frame set becomes a DecodeError reply and the server keeps working",
          "[integration][net]") {
  zmq::context_t ctx;
  Server server(ctx, local_server());
  Client client(ctx, client_of(server));

  REQUIRE(client.send({Blob::from_string("garbage")}, kWaitMs));
  auto bad = recv_request(server, kWaitMs, Limits{});
  REQUIRE(bad);
  REQUIRE(bad->error);
  CHECK_FALSE(bad->message);
  CHECK(bad->error->code == ErrorCode::malformed);
  REQUIRE(reply_error(server, *bad));
  auto err = recv_message(client, kWaitMs, Limits{});
  REQUIRE(err);
  CHECK(std::get<ErrorMsg>(*err).code == static_cast<uint16_t>(ErrorCode::malformed));

  // A NaN in the rows: rejected with the request id, then a good request still works.
  ExpertForward f = forward_request(2, 2);
  f.rows = make_f32({2, 2}, {1.0f, 2.0f, NAN, 4.0f});
  REQUIRE(send_message(client, f, kWaitMs));
  auto nan = recv_request(server, kWaitMs, Limits{});
  REQUIRE(nan);
  REQUIRE(nan->error);
  CHECK(nan->error->code == ErrorCode::non_finite);
  CHECK(to_error_msg(*nan->error).request_id == 41);

  REQUIRE(send_message(client, Heartbeat{1, 2, "serving"}, kWaitMs));
  auto good = recv_request(server, kWaitMs, Limits{});
  REQUIRE(good);
  REQUIRE(good->message);
  CHECK(std::get<Heartbeat>(*good->message).state == "serving");
}

TEST_CASE("sending to an unknown or vanished peer returns false", "[integration][net]") {
  zmq::context_t ctx;
  Server server(ctx, local_server());
  SocketMonitor monitor(ctx, server.socket(), ZMQ_EVENT_DISCONNECTED);
  CHECK_FALSE(server.send("no-such-peer", encode(Heartbeat{})));

  std::string peer;
  {
    Client client(ctx, client_of(server));
    REQUIRE(send_message(client, Heartbeat{1, 0, "x"}, kWaitMs));
    auto req = recv_request(server, kWaitMs, Limits{});
    REQUIRE(req);
    peer = req->peer;
    CHECK(reply(server, peer, Heartbeat{2, 0, "hub"}));
  }  // the client is gone
  REQUIRE(monitor.wait_for(ZMQ_EVENT_DISCONNECTED, kWaitMs));
  // libzmq removes the route once the socket has processed the disconnect (on its next poll):
  // until then a send is accepted and silently dropped. Poll until the route is gone.
  bool routed = true;
  for (int polls = 0; routed && polls < kWaitMs / 10; ++polls) {
    routed = server.send(peer, encode(Heartbeat{3, 0, "hub"}));
    if (routed) server.recv(10);
  }
  CHECK_FALSE(routed);
}

TEST_CASE("a frame over ZMQ_MAXMSGSIZE is dropped with its connection; the server keeps working",
          "[integration][net]") {
  zmq::context_t ctx;
  ServerOptions so = local_server();
  so.max_message_bytes = 64 * 1024;
  Server server(ctx, so);
  SocketMonitor monitor(ctx, server.socket(), ZMQ_EVENT_DISCONNECTED);
  {
    Client big(ctx, client_of(server));
    REQUIRE(send_message(big, forward_request(1024, 256), kWaitMs));  // 1 MiB of rows
    REQUIRE(monitor.wait_for(ZMQ_EVENT_DISCONNECTED, kWaitMs));       // libzmq cut the sender off
  }
  CHECK_FALSE(server.recv(100));
  Client small(ctx, client_of(server));
  REQUIRE(send_message(small, forward_request(4, 8), kWaitMs));
  auto req = recv_request(server, kWaitMs, Limits{});
  REQUIRE(req);
  CHECK(req->message);
}

TEST_CASE("frames beyond max_frames are dropped and reported", "[integration][net]") {
  zmq::context_t ctx;
  ServerOptions so = local_server();
  so.max_frames = 3;
  Server server(ctx, so);
  Client client(ctx, client_of(server));
  std::vector<Blob> many(10, Blob::from_string("x"));
  REQUIRE(client.send(many, kWaitMs));
  auto req = recv_request(server, kWaitMs, Limits{});
  REQUIRE(req);
  CHECK(req->error);
  CHECK(req->error->code == ErrorCode::too_large);
  CHECK(req->bytes == 10);
}

TEST_CASE("Poller reports which socket is readable", "[integration][net]") {
  zmq::context_t ctx;
  Server a(ctx, local_server()), b(ctx, local_server());
  Client to_b(ctx, client_of(b));
  Poller poller;
  size_t ia = poller.add(a.socket());
  size_t ib = poller.add(b.socket());
  CHECK(poller.wait(0) == 0);
  REQUIRE(send_message(to_b, Bye{"done"}, kWaitMs));
  REQUIRE(poller.wait(kWaitMs) == 1);
  CHECK_FALSE(poller.ready(ia));
  CHECK(poller.ready(ib));
  CHECK(b.recv(0));
}

TEST_CASE("send_raw feeds arbitrary frames to a live server thread", "[integration][net]") {
  zmq::context_t ctx;
  std::string endpoint;
  std::promise<std::string> bound;
  std::atomic<bool> done{false};
  std::thread serving([&] {  // the server's socket lives and dies on this thread
    Server server(ctx, local_server());
    bound.set_value(server.endpoint());
    // Serve until told to stop: with linger 0, closing right after a reply could drop it.
    while (!done.load()) {
      auto req = recv_request(server, 20, Limits{});
      if (!req) continue;
      if (req->error) {
        reply_error(server, *req);
      } else {
        reply(server, req->peer, ControlAck{true, "ok"});
      }
    }
  });
  ClientOptions co;
  co.endpoint = bound.get_future().get();
  auto bad = send_raw(ctx, co, {Blob::from_string("PCMOE/1"), Blob::from_string("\xc1")}, kWaitMs);
  auto good = send_raw(ctx, co, encode(Control{"pause"}), kWaitMs);
  done.store(true);
  serving.join();
  REQUIRE(bad);
  REQUIRE(good);
  auto err = std::get<ErrorMsg>(decode(*bad));
  CHECK(err.code == static_cast<uint16_t>(ErrorCode::malformed));
  CHECK(std::get<ControlAck>(decode(*good)).ok);
}

TEST_CASE("bad socket options are config errors", "[integration][net]") {
  zmq::context_t ctx;
  ServerOptions so;
  so.endpoint = "tcp://127.0.0.1";
  CHECK_THROWS_AS(Server(ctx, so), ConfigError);
  ClientOptions co;
  co.endpoint = "tcp://*:1";
  CHECK_THROWS_AS(Client(ctx, co), ConfigError);
  so = local_server();
  so.curve = CurveKeyPair{"x", "y"};
  CHECK_THROWS_AS(Server(ctx, so), ConfigError);
  Server taken(ctx, local_server());
  so = local_server();
  so.endpoint = taken.endpoint();
  CHECK_THROWS_AS(Server(ctx, so), TransportError);
}
