// PartySession (no sockets, manual clock) in the faults of issue 14: a hub that says
// duplicate_party while this party's previous process is still registered (keep asking); the
// session token of the welcome in every later hello; heartbeats that go unanswered (hello again on
// the same session); a party restarted without its checkpoint while the federation trains (its
// hosted experts come from the hub's pool before it serves or takes a turn).
#include <catch2/catch.hpp>

#include "party/party_session.h"
#include "session_test_util.h"

using namespace pcmoe;
using namespace pcmoe::party;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using test::all_of;
using test::sent;

namespace {

SessionOptions options() {
  SessionOptions o = test::session_options({0}, 2, 30000);
  o.unanswered_ms = 1000;
  o.pool_timeout_ms = 5000;
  return o;
}

proto::Hello hello() { return test::session_hello(); }

proto::Welcome welcome(int64_t step, uint64_t session) {
  proto::Welcome w;
  w.party_index = 1;
  w.step = step;
  w.moe_layers = {0};
  w.n_experts = 2;
  w.placement = {{0, 1}};
  w.directory = {{"a", 0, "tcp://x", "", true}, {"b", 1, "tcp://y", "", true}};
  w.session = session;
  return w;
}

proto::Turn turn(int64_t begin) {
  proto::Turn t;
  t.turn_id = 5;
  t.step_begin = begin;
  t.n_steps = 1;
  return t;
}

}  // namespace

TEST_CASE("session: duplicate_party while joining is waited out, not fatal", "[unit][party_session]") {
  const auto t0 = Clock::now();
  PartySession s(options(), hello(), t0);
  s.start(0, t0);
  const proto::Reject dup{static_cast<uint16_t>(proto::ErrorCode::duplicate_party), "already connected"};
  CHECK(all_of<act::Fail>(s.on_message(dup, t0)).empty());
  // It keeps saying hello (every hello_retry_ms) and joins when the hub lets it.
  CHECK(sent<proto::Hello>(s.on_tick(t0 + milliseconds(2100), t0)).size() == 1);
  auto out = s.on_message(welcome(0, 77), t0 + milliseconds(2200));
  CHECK(all_of<act::Join>(out).size() == 1);
  CHECK(s.session() == 77);
  // Until hub_timeout_ms it never gives up; then it does.
  PartySession late(options(), hello(), t0);
  late.start(0, t0);
  late.on_message(dup, t0);
  CHECK(all_of<act::Fail>(late.on_tick(t0 + milliseconds(30001), t0)).size() == 1);
}

TEST_CASE("session: unanswered heartbeats make it say hello again with its session token",
          "[unit][party_session]") {
  const auto t0 = Clock::now();
  PartySession s(options(), hello(), t0);
  s.start(0, t0);
  s.on_message(welcome(0, 0x1234), t0);
  s.resumed_at(0, t0);
  // Answers keep it quiet.
  s.on_message(proto::Heartbeat{1, 0, "training"}, t0 + milliseconds(900));
  CHECK(sent<proto::Hello>(s.on_tick(t0 + milliseconds(1500), t0 + milliseconds(1500))).empty());
  // No answer for unanswered_ms, although the hub was heard from (other messages): hello again.
  auto out = s.on_tick(t0 + milliseconds(2000), t0 + milliseconds(2000));
  auto hellos = sent<proto::Hello>(out);
  REQUIRE(hellos.size() == 1);
  CHECK(hellos[0].session == 0x1234);
  // Not again at once; again after another unanswered_ms.
  CHECK(sent<proto::Hello>(s.on_tick(t0 + milliseconds(2500), t0 + milliseconds(2500))).empty());
  CHECK(sent<proto::Hello>(s.on_tick(t0 + milliseconds(3100), t0 + milliseconds(3100))).size() == 1);
  // A rejoin after unknown_party carries the token too.
  proto::ErrorMsg lost{static_cast<uint16_t>(proto::ErrorCode::unknown_party), "send hello", 9, 0};
  auto again = sent<proto::Hello>(s.on_message(lost, t0 + milliseconds(5000)));
  REQUIRE(again.size() == 1);
  CHECK(again[0].session == 0x1234);
}

TEST_CASE("session: restarted without its checkpoint mid-run, its experts come from the pool first",
          "[unit][party_session]") {
  const auto t0 = Clock::now();
  PartySession s(options(), hello(), t0);
  s.start(0, t0);
  s.on_message(welcome(40, 9), t0);

  SECTION("the pool arrives: seed, then serve, then the held turn") {
    auto out = s.resumed_at(0, t0);
    CHECK(sent<proto::PoolRequest>(out).size() == 1);
    CHECK(all_of<act::Serve>(out).empty());
    CHECK(s.seeding());
    s.on_message(turn(40), t0);  // held: the experts are not ready
    CHECK_FALSE(s.begin_step());
    proto::Pool pool;
    pool.step = 30;
    out = s.on_message(pool, t0 + milliseconds(10));
    auto seeds = all_of<act::SeedExperts>(out);
    REQUIRE(seeds.size() == 1);
    CHECK(seeds[0].pool.step == 30);
    CHECK(all_of<act::Serve>(out).size() == 1);
    CHECK_FALSE(s.seeding());
    auto step = s.begin_step();
    REQUIRE(step);
    CHECK(step->step == 40);
  }
  SECTION("no pool in time: serve with the initial experts") {
    s.resumed_at(0, t0);
    auto out = s.on_tick(t0 + milliseconds(5001), t0 + milliseconds(5001));
    auto seeds = all_of<act::SeedExperts>(out);
    REQUIRE(seeds.size() == 1);
    CHECK(seeds[0].pool.step == -1);
    CHECK(all_of<act::Serve>(out).size() == 1);
  }
  SECTION("with a checkpoint it serves at once") {
    auto out = s.resumed_at(35, t0);
    CHECK(all_of<act::Serve>(out).size() == 1);
    CHECK(sent<proto::PoolRequest>(out).empty());
  }
}

TEST_CASE("session: a fresh party at step 0 serves at once", "[unit][party_session]") {
  const auto t0 = Clock::now();
  PartySession s(options(), hello(), t0);
  s.start(0, t0);
  s.on_message(welcome(0, 9), t0);
  auto out = s.resumed_at(0, t0);
  CHECK(all_of<act::Serve>(out).size() == 1);
  CHECK_FALSE(s.seeding());
}
