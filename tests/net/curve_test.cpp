// Integration tests of CURVE on Server/Client: known client keys are accepted and reported per
// message, unknown keys never get a message through (the ZAP handler denies the handshake),
// allow-lists can change at run time, and several CURVE servers share one ZAP handler.
#include <catch2/catch.hpp>

#include "net/monitor.h"
#include "net/rpc.h"
#include "net/zap.h"

using namespace pcmoe;
using namespace pcmoe::net;
using namespace pcmoe::proto;

namespace {

constexpr int kWaitMs = 5000;

ServerOptions curve_server(const CurveKeyPair& keys, std::vector<std::string> allowed) {
  ServerOptions o;
  o.endpoint = "tcp://127.0.0.1:*";
  o.curve = keys;
  o.allowed_client_keys = std::move(allowed);
  return o;
}

ClientOptions curve_client(const Server& s, const CurveKeyPair& mine, const std::string& server_key) {
  ClientOptions o;
  o.endpoint = s.endpoint();
  o.curve = mine;
  o.server_public_key = server_key;
  o.reconnect_ivl_ms = 20;
  o.reconnect_ivl_max_ms = 100;
  return o;
}

// Round trip of one heartbeat; returns the key the server saw ("" if nothing arrived).
std::string round_trip(Server& server, Client& client, uint64_t seq) {
  if (!send_message(client, Heartbeat{seq, 0, "serving"}, kWaitMs)) return "";
  auto req = recv_request(server, kWaitMs, Limits{});
  if (!req || !req->message) return "";
  if (!reply(server, req->peer, Heartbeat{seq, 0, "hub"})) return "";
  auto back = recv_message(client, kWaitMs, Limits{});
  if (!back || std::get<Heartbeat>(*back).seq != seq) return "";
  return req->curve_key;
}

// Waits (polling the client's socket, never sleeping) until its CURVE handshake is refused.
bool wait_refused(Client& c) {
  for (int polls = 0; polls < kWaitMs / 10; ++polls) {
    if (c.refused()) return true;
    c.recv(10);
  }
  return false;
}

}  // namespace

TEST_CASE("CURVE: a known client key is accepted and reported with each message", "[integration][net]") {
  REQUIRE(curve_available());
  zmq::context_t ctx;
  CurveKeyPair server_keys = generate_keypair(), alice = generate_keypair(), bob = generate_keypair();
  Server server(ctx, curve_server(server_keys, {alice.public_key, bob.public_key}));
  CHECK(server.curve_enabled());
  Client a(ctx, curve_client(server, alice, server_keys.public_key));
  Client b(ctx, curve_client(server, bob, server_keys.public_key));
  CHECK(round_trip(server, a, 1) == alice.public_key);
  CHECK(round_trip(server, b, 2) == bob.public_key);
  CHECK(round_trip(server, a, 3) == alice.public_key);
}

TEST_CASE("CURVE: an unknown client key never gets a message through", "[integration][net]") {
  zmq::context_t ctx;
  CurveKeyPair server_keys = generate_keypair(), alice = generate_keypair(), mallory = generate_keypair();
  Server server(ctx, curve_server(server_keys, {alice.public_key}));
  auto zap = ZapHandler::for_context(ctx);
  uint64_t denied_before = zap->n_denied();

  Client m(ctx, curve_client(server, mallory, server_keys.public_key));
  CHECK_FALSE(send_message(m, Heartbeat{1, 0, "evil"}, 300));  // no connection: nothing queued
  REQUIRE(wait_refused(m));
  CHECK(zap->n_denied() > denied_before);
  CHECK_FALSE(server.recv(100));

  // Without the server's key, or without CURVE at all, nothing gets through either.
  ClientOptions plain;
  plain.endpoint = server.endpoint();
  Client p(ctx, plain);
  CHECK_FALSE(send_message(p, Heartbeat{2, 0, "plain"}, 300));
  CHECK_FALSE(server.recv(100));

  // Alice still works, and Mallory gets in once the allow-list names her.
  Client a(ctx, curve_client(server, alice, server_keys.public_key));
  CHECK(round_trip(server, a, 3) == alice.public_key);
  server.set_allowed_client_keys({alice.public_key, mallory.public_key});
  CHECK(round_trip(server, m, 4) == mallory.public_key);
}

TEST_CASE("CURVE: an empty allow-list accepts any key, still authenticated per message",
          "[integration][net]") {
  zmq::context_t ctx;
  CurveKeyPair server_keys = generate_keypair(), anyone = generate_keypair();
  Server server(ctx, curve_server(server_keys, {}));
  Client c(ctx, curve_client(server, anyone, server_keys.public_key));
  CHECK(round_trip(server, c, 1) == anyone.public_key);
}

TEST_CASE("CURVE: servers in one context share the ZAP handler with separate allow-lists",
          "[integration][net]") {
  zmq::context_t ctx;
  CurveKeyPair k1 = generate_keypair(), k2 = generate_keypair(), alice = generate_keypair();
  Server s1(ctx, curve_server(k1, {alice.public_key}));
  Server s2(ctx, curve_server(k2, {generate_keypair().public_key}));
  Client to1(ctx, curve_client(s1, alice, k1.public_key));
  Client to2(ctx, curve_client(s2, alice, k2.public_key));
  CHECK(round_trip(s1, to1, 1) == alice.public_key);
  CHECK(wait_refused(to2));
  CHECK_FALSE(s2.recv(100));
}

TEST_CASE("CURVE: the ZAP handler restarts after its last server is gone", "[integration][net]") {
  zmq::context_t ctx;
  CurveKeyPair keys = generate_keypair(), alice = generate_keypair();
  for (int round = 0; round < 3; ++round) {
    Server server(ctx, curve_server(keys, {alice.public_key}));
    Client c(ctx, curve_client(server, alice, keys.public_key));
    CHECK(round_trip(server, c, static_cast<uint64_t>(round)) == alice.public_key);
  }
}
