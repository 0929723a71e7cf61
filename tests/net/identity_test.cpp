// Who a Server believes it talks to: a routing id already in use is never handed over to a second
// connection (no ZMQ_ROUTER_HANDOVER), so a peer that picks another peer's routing id can neither
// take over its replies nor cut it off; a CURVE client whose server key is wrong learns that its
// handshakes fail (no silent wait); ZMTP heartbeats are set on both ends when asked for.
// Synchronisation by poll timeouts and monitor events, never by sleeping.
#include <catch2/catch.hpp>

#include <functional>

#include <chrono>
#include "net/curve.h"
#include "net/rpc.h"

using namespace pcmoe;
using namespace pcmoe::net;
using namespace pcmoe::proto;

namespace {

constexpr int kWaitMs = 5000;

bool eventually(const std::function<bool()>& pred) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(kWaitMs);
  while (!pred()) {
    if (std::chrono::steady_clock::now() > until) return false;
    zmq_poll(nullptr, 0, 20);  // a 20 ms pause between looks at the monitor
  }
  return true;
}

Heartbeat beat(uint64_t seq) { return Heartbeat{seq, 0, "serving"}; }

// Sends heartbeats from `client` until the server receives one (the connection is up); returns the
// routing id the server saw.
std::string first_peer(Server& server, Client& client, uint64_t seq) {
  for (int i = 0; i < 50; ++i) {
    REQUIRE(send_message(client, beat(seq), kWaitMs));
    if (auto req = recv_request(server, 100, Limits{})) return req->peer;
  }
  FAIL("no message reached the server");
  return "";
}

}  // namespace

TEST_CASE("a second connection with a routing id in use neither takes it over nor cuts the first off",
          "[integration][net]") {
  zmq::context_t ctx;
  ServerOptions so;
  so.endpoint = "tcp://127.0.0.1:*";
  Server server(ctx, so);
  ClientOptions co;
  co.endpoint = server.endpoint();
  co.routing_id = "party-b";
  Client owner(ctx, co);
  const std::string peer = first_peer(server, owner, 1);
  CHECK(peer == "party-b");

  // The impostor connects with the same routing id: libzmq refuses its pipe. Its messages never
  // arrive, and replies to "party-b" still reach the first connection.
  Client impostor(ctx, co);
  for (uint64_t i = 0; i < 5; ++i) send_message(impostor, beat(100 + i), 200);
  REQUIRE(send_message(owner, beat(2), kWaitMs));
  bool owner_heard = false;
  for (int i = 0; i < 8; ++i) {
    auto req = recv_request(server, 300, Limits{});
    if (!req) break;
    if (req->peer != "party-b" || !req->message) continue;  // whatever libzmq made of the refused pipe
    const uint64_t seq = std::get<Heartbeat>(*req->message).seq;
    CHECK(seq < 100);  // nothing of the impostor's is attributed to "party-b"
    owner_heard = owner_heard || seq == 2;
  }
  CHECK(owner_heard);
  REQUIRE(reply(server, "party-b", beat(7)));
  auto back = recv_message(owner, kWaitMs, Limits{});
  REQUIRE(back);
  CHECK(std::get<Heartbeat>(*back).seq == 7);
  CHECK_FALSE(recv_message(impostor, 200, Limits{}));
}

TEST_CASE("CURVE: a client with the wrong server key counts failed handshakes", "[integration][net]") {
  zmq::context_t ctx;
  const CurveKeyPair server_keys = generate_keypair(), client_keys = generate_keypair();
  ServerOptions so;
  so.endpoint = "tcp://127.0.0.1:*";
  so.curve = server_keys;
  so.allowed_client_keys = {client_keys.public_key};
  Server server(ctx, so);
  ClientOptions co;
  co.endpoint = server.endpoint();
  co.curve = client_keys;
  co.reconnect_ivl_ms = 20;
  co.reconnect_ivl_max_ms = 50;

  SECTION("wrong key: handshakes fail, none succeeds, nothing is delivered") {
    co.server_public_key = generate_keypair().public_key;
    Client client(ctx, co);
    CHECK(eventually([&] { return client.failed_handshakes() >= 3; }));
    CHECK_FALSE(client.handshake_succeeded());
    CHECK_FALSE(client.refused());  // not an authentication verdict: the server could not decrypt us
    CHECK_FALSE(send_message(client, beat(1), 100));
  }
  SECTION("right key: the handshake succeeds and the count stays 0") {
    co.server_public_key = server_keys.public_key;
    Client client(ctx, co);
    REQUIRE(send_message(client, beat(1), kWaitMs));
    REQUIRE(recv_request(server, kWaitMs, Limits{}));
    CHECK(client.handshake_succeeded());
    CHECK(client.failed_handshakes() == 0);
  }
}

TEST_CASE("ZMTP heartbeats are set on a Server and a Client when asked for", "[integration][net]") {
  zmq::context_t ctx;
  ServerOptions so;
  so.endpoint = "tcp://127.0.0.1:*";
  so.heartbeat_ivl_ms = 250;
  so.heartbeat_timeout_ms = 1500;
  Server server(ctx, so);
  CHECK(server.socket().get(zmq::sockopt::heartbeat_ivl) == 250);
  CHECK(server.socket().get(zmq::sockopt::heartbeat_timeout) == 1500);
  ClientOptions co;
  co.endpoint = server.endpoint();
  co.heartbeat_ivl_ms = 300;
  co.heartbeat_timeout_ms = 2000;
  Client client(ctx, co);
  CHECK(client.socket().get(zmq::sockopt::heartbeat_ivl) == 300);
  CHECK(client.socket().get(zmq::sockopt::heartbeat_ttl) == 2000);
  ServerOptions bad = so;
  bad.endpoint = "tcp://127.0.0.1:*";
  bad.heartbeat_timeout_ms = 0;
  CHECK_THROWS_AS(Server(ctx, bad), ConfigError);
}
