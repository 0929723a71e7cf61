// Who speaks for a party (HubState, socket-free): a connection other than the registered one can
// neither register as a live party (without CURVE) nor say bye or report for it; only the same
// process (its session token) or, with CURVE, the party's key may take the registration over. And
// a resumed hub fast-forwards to the step its parties trained instead of training steps again.
#include <catch2/catch.hpp>

#include "hub/saved_state.h"
#include "hub_test_util.h"
#include "test_util.h"

using namespace pcmoe;
using namespace pcmoe::hub;
using test::HubHarness;
using test::of_type;
using test::only_error;
using test::only_reject;
using test::the_turn;

namespace {

uint64_t session_of(const std::vector<Outgoing>& out) {
  auto w = of_type<proto::Welcome>(out);
  REQUIRE(w.size() == 1);
  return w[0].session;
}

// b holds the turn when this returns; the Turn is returned.
proto::Turn b_holds_the_turn(HubHarness& h) {
  auto out = h.join_all();
  for (int i = 0; i < 8; ++i) {
    const proto::Turn t = the_turn(out);
    if (h.hub().registry().at(h.hub().scheduler().active()->party).id == "b") return t;
    out = h.play(t);
  }
  FAIL("b never got a turn");
  return {};
}

}  // namespace

TEST_CASE("identity: impostors on other connections change nothing of a live party (no CURVE)",
          "[unit][hub]") {
  HubHarness h(test::small_hub_config({"a", "b"}));
  const proto::Turn t = b_holds_the_turn(h);
  const std::string b_peer = HubHarness::peer("b");
  const uint64_t b_session = h.hub().registry().at(1).session;
  REQUIRE(b_session != 0);

  SECTION("a hello as b: refused while b is heard from; b keeps its registration and turn") {
    auto r = only_reject(h.send("stranger", test::hello_for(h.cfg(), "b")));
    CHECK(r.code == uint16_t(proto::ErrorCode::duplicate_party));
    proto::Hello guess = test::hello_for(h.cfg(), "b");
    guess.session = b_session + 1;  // a wrong token is no token
    CHECK(only_reject(h.send("stranger", guess)).code == uint16_t(proto::ErrorCode::duplicate_party));
  }
  SECTION("a bye, a report or a turn_done from a connection that never registered") {
    CHECK(only_error(h.send("stranger", proto::Bye{"leaving"})).code ==
          uint16_t(proto::ErrorCode::unknown_party));
    CHECK(only_error(h.send("stranger", test::report_for(h.cfg(), t.turn_id, t.step_begin))).code ==
          uint16_t(proto::ErrorCode::unknown_party));
    CHECK(only_error(h.send("stranger", proto::TurnDone{t.turn_id, 0, false, "x", "a"})).code ==
          uint16_t(proto::ErrorCode::unknown_party));
  }
  const PartyRecord& b = h.hub().registry().at(1);
  CHECK(b.alive);
  CHECK(b.peer == b_peer);
  REQUIRE(h.hub().scheduler().active());
  CHECK(h.hub().scheduler().active()->turn_id == t.turn_id);
  // b's own reports still count.
  h.play(t);
  CHECK(h.hub().step() == t.step_begin + 1);
}

TEST_CASE("identity: the same process comes back with its session token and keeps its turn", "[unit][hub]") {
  HubHarness h(test::small_hub_config({"a", "b"}));
  const proto::Turn t = b_holds_the_turn(h);
  proto::Hello again = test::hello_for(h.cfg(), "b");
  again.session = h.hub().registry().at(1).session;
  const uint64_t epoch = h.hub().registry().epoch();

  SECTION("on a new connection (ZeroMQ reconnected)") {
    auto out = h.send("peer-b-2", again);
    CHECK(session_of(out) == again.session);
    CHECK(h.hub().registry().at(1).peer == "peer-b-2");
    // Its reports now come from the new connection; the old one speaks for nobody.
    CHECK(only_error(h.send(HubHarness::peer("b"), proto::Heartbeat{1, 0, "x"})).code ==
          uint16_t(proto::ErrorCode::unknown_party));
    h.send("peer-b-2", test::report_for(h.cfg(), t.turn_id, t.step_begin));
  }
  SECTION("on the same connection (its heartbeats went unanswered)") {
    CHECK(session_of(h.send(HubHarness::peer("b"), again)) == again.session);
    h.send(HubHarness::peer("b"), test::report_for(h.cfg(), t.turn_id, t.step_begin));
  }
  CHECK(h.hub().step() == t.step_begin + 1);  // the turn was not abandoned
  CHECK(h.hub().registry().at(1).joins == 1);
  CHECK(h.hub().registry().epoch() == epoch);  // nothing changed for the others
}

TEST_CASE("identity: a restarted process (no token) replaces the registration once the old one is silent",
          "[unit][hub]") {
  HubHarness h(test::small_hub_config({"a", "b"}));
  const proto::Turn t = b_holds_the_turn(h);
  const uint64_t old_session = h.hub().registry().at(1).session;
  h.advance(h.cfg().hub.party_timeout_ms + 1);
  h.send(HubHarness::peer("a"), proto::Heartbeat{1, 0, "serving"});  // a stays alive
  auto out = h.send("peer-b-restarted", test::hello_for(h.cfg(), "b"));
  CHECK(session_of(out) != old_session);
  CHECK(h.hub().registry().at(1).peer == "peer-b-restarted");
  CHECK(h.hub().registry().at(1).joins == 2);
  // Its old turn was abandoned (a new one went out).
  CHECK((!h.hub().scheduler().active() || h.hub().scheduler().active()->turn_id != t.turn_id));
}

TEST_CASE("identity: with CURVE the party's key takes over at once; another key never", "[unit][hub]") {
  HubConfig cfg = test::small_hub_config({"a", "b"});
  const std::string key_a(40, 'A'), key_b(40, 'B');
  cfg.hub.parties[0].public_key = key_a;
  cfg.hub.parties[1].public_key = key_b;
  HubOptions o;
  o.curve = true;
  HubHarness h(cfg, o);
  proto::Hello ha = test::hello_for(cfg, "a"), hb = test::hello_for(cfg, "b");
  ha.curve_public_key = key_a;
  hb.curve_public_key = key_b;
  h.send("pa", ha, key_a);
  h.send("pb", hb, key_b);
  REQUIRE(h.hub().registry().all_alive());
  // a's key claiming b, on any connection: refused, b untouched.
  CHECK(only_reject(h.send("pa2", hb, key_a)).code == uint16_t(proto::ErrorCode::unknown_party));
  CHECK(h.hub().registry().at(1).peer == "pb");
  // b's key on a new connection (a restart, heard from a moment ago): taken over at once.
  auto out = h.send("pb2", hb, key_b);
  CHECK(of_type<proto::Welcome>(out).size() == 1);
  CHECK(h.hub().registry().at(1).peer == "pb2");
  CHECK(h.hub().registry().at(1).alive);
}

TEST_CASE("resume: a hub behind its parties fast-forwards instead of training steps again", "[unit][hub]") {
  HubConfig cfg = test::small_hub_config({"a", "b", "c"});
  cfg.hub.state_every = 4;
  HubHarness before(cfg);
  auto out = before.join_all();
  while (before.hub().step() < 5) out = before.play(the_turn(out));
  // The saved state is at step 4; the parties trained up to step 6 before the hub died.
  test::TempDir dir;
  auto saved = read_saved_hub_state(dir.write("hub_state.json", before.store().state));
  REQUIRE(saved->step == 4);
  out = before.play(the_turn(out));  // step 5: the uninterrupted hub's schedule, for comparison
  out = before.play(the_turn(out));  // step 6
  const proto::Turn reference = the_turn(out);
  REQUIRE(reference.step_begin == 7);

  HubHarness after(cfg);
  after.hub().restore(*saved, nullptr);
  proto::Hello h = test::hello_for(cfg, "a");
  h.resume_step = 7;  // a trained step 6
  after.send(HubHarness::peer("a"), h);
  CHECK(after.hub().step() == 7);
  after.join("b");  // behind: no change
  const proto::Turn t = the_turn(after.join("c"));
  CHECK(t.step_begin == 7);
  CHECK(after.hub().scheduler().active()->party == before.hub().scheduler().active()->party);

  // A hub that did not resume a run only warns (its parties' steps belong to another run).
  HubHarness fresh(cfg);
  fresh.send(HubHarness::peer("a"), h);
  CHECK(fresh.hub().step() == 0);
}

TEST_CASE("training start: the hub state is written and, with periodic snapshots, a first pool taken",
          "[unit][hub]") {
  HubConfig cfg = test::small_hub_config({"a", "b"});
  cfg.hub.snapshot_every = 100;
  HubHarness h(cfg);
  h.join("a");
  CHECK(h.store().state_writes == 0);
  auto out = h.join("b");
  CHECK(h.store().state_writes == 1);
  CHECK(of_type<proto::SnapshotRequest>(out).size() == 2);
  CHECK(of_type<proto::Turn>(out).empty());  // turns wait for the round
  out = h.answer_snapshots(out);
  CHECK(h.hub().pool().step() == 0);
  CHECK(of_type<proto::Turn>(out).size() == 1);
}

TEST_CASE("turn notices: every live party learns who holds the turn and when it is over", "[unit][hub]") {
  HubHarness h(test::small_hub_config({"a", "b", "c"}));
  auto out = h.join_all();
  const proto::Turn t = the_turn(out);
  const uint32_t holder = h.hub().scheduler().active()->party;
  std::vector<proto::TurnNotice> notices;
  for (const auto& n : of_type<proto::TurnNotice>(out)) {
    if (!n.holders.empty()) notices.push_back(n);  // (the last welcome's: no turn yet)
  }
  REQUIRE(notices.size() == 3);  // one per live party, holder included, before its Turn
  for (const auto& n : notices) {
    CHECK(n.turn_id == t.turn_id);
    CHECK(n.holders == std::vector<uint32_t>{holder});
    CHECK(n.step_begin == t.step_begin);
    CHECK(n.n_steps == t.n_steps);
  }
  CHECK(std::holds_alternative<proto::Turn>(out.back().message));
  // A party (not the holder) registering again in the middle of the turn learns it with its welcome.
  std::string other;
  for (const char* id : {"a", "b", "c"}) {
    if (h.hub().registry().find_id(id)->index != holder) other = id;
  }
  auto again = h.join(other);
  auto late = of_type<proto::TurnNotice>(again, HubHarness::peer(other));
  REQUIRE(late.size() == 1);
  CHECK(late[0].holders == std::vector<uint32_t>{holder});
  CHECK(late[0].turn_id == t.turn_id);
  // The turn ends: a notice without holders, then the next turn's.
  out = h.play(t);
  notices = of_type<proto::TurnNotice>(out);
  REQUIRE(notices.size() == 6);
  CHECK(notices[0].turn_id == t.turn_id);
  CHECK(notices[0].holders.empty());
  CHECK(notices[0].step_begin == t.step_begin + 1);
  CHECK(notices[3].turn_id == t.turn_id + 1);
  CHECK(notices[3].holders.size() == 1);
}
