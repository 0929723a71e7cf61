// HubLink over a real socket (a ROUTER standing in for the hub, ephemeral port): heartbeats keep
// flowing while the owner thread is busy (a long step) and carry the published state; messages
// from the owner go out in order; the hub's messages wait in the inbox with their arrival time;
// a directory marks lost parties for the expert waits of a step in progress.
#include <catch2/catch.hpp>

#include <thread>

#include "net/context.h"
#include "net/rpc.h"
#include "party/hub_link.h"

using namespace pcmoe;
using Clock = std::chrono::steady_clock;

namespace {

struct FakeHub {
  net::Server server;
  proto::Limits limits;
  FakeHub() : server(net::default_context(), options()) {}
  static net::ServerOptions options() {
    net::ServerOptions o;
    o.endpoint = "tcp://127.0.0.1:*";
    return o;
  }
  // Everything received within ms milliseconds.
  std::vector<std::pair<std::string, proto::Message>> drain(int ms) {
    std::vector<std::pair<std::string, proto::Message>> out;
    const auto end = Clock::now() + std::chrono::milliseconds(ms);
    while (Clock::now() < end) {
      auto r = net::recv_request(server, 10, limits);
      if (r && r->message) out.emplace_back(r->peer, *r->message);
    }
    return out;
  }
};

}  // namespace

TEST_CASE("hub link: heartbeats flow while the owner is busy; sends keep their order",
          "[integration][party]") {
  FakeHub hub;
  net::ClientOptions co;
  co.endpoint = hub.server.endpoint();
  co.routing_id = "party-a";
  party::HubLink link(net::default_context(), co, hub.limits, 40);
  CHECK(hub.drain(200).empty());  // no heartbeats before they are enabled (no welcome yet)
  link.set_heartbeat(true, "training", 7);
  for (int i = 0; i < 3; ++i) {
    proto::StepReport r;
    r.step = i;
    link.send(r);
  }
  // The owner is "in a step" for 600 ms: it calls nothing on the link.
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  auto got = hub.drain(100);
  int heartbeats = 0;
  std::vector<int64_t> steps;
  std::string peer;
  for (auto& [p, m] : got) {
    peer = p;
    if (auto* hb = std::get_if<proto::Heartbeat>(&m)) {
      ++heartbeats;
      CHECK(hb->state == "training");
      CHECK(hb->step == 7);
    }
    if (auto* r = std::get_if<proto::StepReport>(&m)) steps.push_back(r->step);
  }
  CHECK(heartbeats >= 8);  // every 40 ms over ~700 ms
  CHECK(steps == std::vector<int64_t>{0, 1, 2});
  CHECK(peer == "party-a");

  // The hub's messages queue up with their arrival time; a directory marks lost parties.
  CHECK_FALSE(link.poll(0));
  proto::Directory d;
  d.directory = {{"a", 0, "tcp://x", "", true}, {"b", 1, "tcp://y", "", false}};
  const auto before = Clock::now();
  REQUIRE(net::reply(hub.server, peer, d));
  auto r = link.poll(2000);
  REQUIRE(r);
  CHECK(std::holds_alternative<proto::Directory>(r->message));
  CHECK(r->at >= before);
  CHECK(link.last_heard() >= before);
  CHECK(link.party_lost(1));
  CHECK_FALSE(link.party_lost(0));
  CHECK_FALSE(link.party_lost(5));

  // Turn notices (1.2) are kept for the expert host and never queued for the session.
  CHECK_FALSE(link.current_turn());
  REQUIRE(net::reply(hub.server, peer, proto::TurnNotice{9, 2, {1}, 40, 1}));
  REQUIRE(net::reply(hub.server, peer, proto::Heartbeat{1, 41, "training"}));  // behind it, in order
  auto next = link.poll(2000);
  REQUIRE(next);
  CHECK(std::holds_alternative<proto::Heartbeat>(next->message));
  auto turn = link.current_turn();
  REQUIRE(turn);
  CHECK(turn->turn_id == 9);
  CHECK(turn->holders == std::vector<uint32_t>{1});
  CHECK(turn->step_begin == 40);
  REQUIRE(net::reply(hub.server, peer, proto::TurnNotice{9, 2, {}, 41, 0}));  // the turn is over
  REQUIRE(net::reply(hub.server, peer, proto::Heartbeat{2, 41, "training"}));
  REQUIRE(link.poll(2000));
  CHECK(link.current_turn()->holders.empty());
}

TEST_CASE("hub link: what is queued last still goes out when the link closes", "[integration][party]") {
  FakeHub hub;
  net::ClientOptions co;
  co.endpoint = hub.server.endpoint();
  {
    party::HubLink link(net::default_context(), co, hub.limits, 1000);
    proto::Bye bye;
    bye.reason = "signal";
    link.send(bye);
  }
  bool got_bye = false;
  for (auto& [p, m] : hub.drain(1000)) got_bye = got_bye || std::holds_alternative<proto::Bye>(m);
  CHECK(got_bye);
}
