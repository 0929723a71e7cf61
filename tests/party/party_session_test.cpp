// Unit tests of PartySession without sockets (manual clock): joining, rejoining after
// unknown_party, turns and their steps, a directory change during a step (applied after it), the
// loss of the hub, signals and the end sequence; and one federation where the session talks to a
// real hub::HubState in the same process.
#include <catch2/catch.hpp>

#include "hub/hub_state.h"
#include "hub/hub_test_util.h"
#include "party/party_session.h"
#include "session_test_util.h"

using namespace pcmoe;
using namespace pcmoe::party;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using test::all_of;
using test::sent;

namespace {

SessionOptions options() { return test::session_options({0, 1}, 4, 3000); }

proto::Hello hello() { return test::session_hello(); }

proto::Welcome welcome(uint32_t index = 1) {
  proto::Welcome w;
  w.party_index = index;
  w.run_id = "run";
  w.moe_layers = {0, 1};
  w.n_experts = 4;
  w.placement = {{0, 1, 2, 0}, {0, 1, 2, 0}};
  for (uint32_t i = 0; i < 3; ++i)
    w.directory.push_back({std::string(1, char('a' + i)), i, "tcp://x", "", true});
  return w;
}

// A session that has joined at t0 (index 1 of 3).
struct Joined {
  Clock::time_point t0 = Clock::now();
  PartySession s{options(), hello(), t0};
  Joined() {
    s.start(0, t0);
    auto out = s.on_message(welcome(), t0);
    REQUIRE(all_of<act::Join>(out).size() == 1);
  }
  std::vector<Action> turn(uint64_t id, int64_t begin, uint32_t n) {
    proto::Turn t;
    t.turn_id = id;
    t.step_begin = begin;
    t.n_steps = n;
    return s.on_message(t, t0);
  }
  static proto::StepReport report(uint64_t turn, int64_t step) {
    proto::StepReport r;
    r.turn_id = turn;
    r.step = step;
    return r;
  }
};

}  // namespace

TEST_CASE("party session: join sends hello, retries, and takes the first welcome", "[unit][party_session]") {
  const auto t0 = Clock::now();
  PartySession s(options(), hello(), t0);
  auto out = s.start(5, t0);
  auto hellos = sent<proto::Hello>(out);
  REQUIRE(hellos.size() == 1);
  CHECK(hellos[0].resume_step == 5);
  CHECK(s.heartbeat_state() == "connecting");
  CHECK(s.on_tick(t0 + milliseconds(1000), t0).empty());  // too early for another hello
  CHECK(sent<proto::Hello>(s.on_tick(t0 + milliseconds(2100), t0)).size() == 1);
  // Nothing but a welcome or a reject means anything before joining.
  CHECK(s.on_message(proto::Turn{}, t0).empty());
  out = s.on_message(welcome(), t0 + milliseconds(2200));
  REQUIRE(all_of<act::Join>(out).size() == 1);
  CHECK(s.joined());
  CHECK(s.index() == 1);
  CHECK(s.heartbeat_state() == "serving");
  CHECK(s.heartbeat_step() == 5);
}

TEST_CASE("party session: join failures are fatal with a reason", "[unit][party_session]") {
  const auto t0 = Clock::now();
  SECTION("no welcome within hub_timeout_ms") {
    PartySession s(options(), hello(), t0);
    s.start(0, t0);
    auto fails = all_of<act::Fail>(s.on_tick(t0 + milliseconds(3100), t0));
    REQUIRE(fails.size() == 1);
    CHECK(fails[0].kind == act::FailKind::transport);
    CHECK_THAT(fails[0].message,
               Catch::Contains("no welcome from the hub at tcp://127.0.0.1:5555 within 3000 ms"));
  }
  SECTION("rejected as an unknown party: a config error naming party.id") {
    PartySession s(options(), hello(), t0);
    s.start(0, t0);
    proto::Reject r;
    r.code = static_cast<uint16_t>(proto::ErrorCode::unknown_party);
    r.reason = "party 'b' is not in this hub's config";
    auto fails = all_of<act::Fail>(s.on_message(r, t0));
    REQUIRE(fails.size() == 1);
    CHECK(fails[0].kind == act::FailKind::config);
    CHECK_THAT(fails[0].message, Catch::Contains("unknown_party") && Catch::Contains("party.yaml:3"));
    CHECK(s.on_tick(t0, t0).empty());  // nothing after a fatal outcome
  }
  SECTION("the hub refused our CURVE key") {
    SessionOptions o = options();
    o.key_file = "b.key";
    o.public_key = "PUBKEY";
    PartySession s(o, hello(), t0);
    s.start(0, t0);
    auto fails = all_of<act::Fail>(s.on_tick(t0 + milliseconds(10), t0, true));
    REQUIRE(fails.size() == 1);
    CHECK(fails[0].kind == act::FailKind::config);
    CHECK_THAT(fails[0].message, Catch::Contains("PUBKEY") && Catch::Contains("b.key"));
  }
  SECTION("a welcome for another model") {
    PartySession s(options(), hello(), t0);
    s.start(0, t0);
    proto::Welcome w = welcome();
    w.n_experts = 8;
    auto fails = all_of<act::Fail>(s.on_message(w, t0));
    REQUIRE(fails.size() == 1);
    CHECK(fails[0].kind == act::FailKind::protocol);
  }
  SECTION("a signal before the welcome") {
    PartySession s(options(), hello(), t0);
    s.start(0, t0);
    auto fails = all_of<act::Fail>(s.on_signal(t0));
    REQUIRE(fails.size() == 1);
    CHECK_THAT(fails[0].message, Catch::Contains("before joining"));
  }
}

TEST_CASE("party session: a turn's steps, reports, turn_done and periodic checkpoints",
          "[unit][party_session]") {
  SessionOptions o = options();
  o.checkpoint_every = 2;
  const auto t0 = Clock::now();
  PartySession s(o, hello(), t0);
  s.start(0, t0);
  s.on_message(welcome(), t0);
  CHECK_FALSE(s.begin_step());
  proto::Turn t;
  t.turn_id = 9;
  t.step_begin = 4;
  t.n_steps = 3;
  CHECK(s.on_message(t, t0).empty());
  CHECK(s.heartbeat_state() == "training");
  std::vector<Action> all;
  for (int64_t step = 4; step < 7; ++step) {
    auto order = s.begin_step();
    REQUIRE(order);
    CHECK(order->step == step);
    CHECK(order->turn_id == 9);
    CHECK_FALSE(s.begin_step());  // one at a time
    auto out = s.step_done(Joined::report(9, step), t0);
    all.insert(all.end(), out.begin(), out.end());
  }
  CHECK_FALSE(s.begin_step());
  CHECK(sent<proto::StepReport>(all).size() == 3);
  auto done = sent<proto::TurnDone>(all);
  REQUIRE(done.size() == 1);
  CHECK(done[0].ok);
  CHECK(done[0].steps_done == 3);
  CHECK(all_of<act::Checkpoint>(all).size() == 1);  // after the 2nd step
  CHECK(s.heartbeat_state() == "serving");
  CHECK(s.heartbeat_step() == 7);
}

TEST_CASE("party session: a failed step ends the turn naming the suspect", "[unit][party_session]") {
  Joined j;
  j.turn(3, 10, 4);
  REQUIRE(j.s.begin_step());
  j.s.step_done(Joined::report(3, 10), j.t0);
  REQUIRE(j.s.begin_step());
  auto out = j.s.step_failed("host party 2 did not answer", "c", j.t0);
  auto done = sent<proto::TurnDone>(out);
  REQUIRE(done.size() == 1);
  CHECK_FALSE(done[0].ok);
  CHECK(done[0].steps_done == 1);
  CHECK(done[0].suspect_party == "c");
  CHECK(done[0].reason == "host party 2 did not answer");
  CHECK_FALSE(j.s.begin_step());
}

TEST_CASE("party session: a directory change during a step is applied after it", "[unit][party_session]") {
  Joined j;
  j.turn(1, 0, 2);
  REQUIRE(j.s.begin_step());
  proto::Directory d;
  d.directory_epoch = 5;
  d.directory = welcome().directory;
  d.directory[2].alive = false;
  proto::ExpertLoad load;
  load.window = {{0.25, 0.25, 0.25, 0.25}, {0.25, 0.25, 0.25, 0.25}};
  CHECK(j.s.on_message(d, j.t0).empty());  // held: the step is running
  CHECK(j.s.on_message(load, j.t0).empty());
  CHECK(j.s.on_message(proto::Heartbeat{}, j.t0).empty());
  auto out = j.s.step_done(Joined::report(1, 0), j.t0);
  REQUIRE(out.size() == 3);
  CHECK(std::holds_alternative<proto::StepReport>(std::get<act::Send>(out[0]).message));  // the step first
  auto dirs = all_of<act::ApplyDirectory>(out);
  REQUIRE(dirs.size() == 1);
  CHECK_FALSE(dirs[0].directory[2].alive);
  CHECK(std::holds_alternative<act::UpdateLoad>(out[2]));  // in arrival order
  // Between steps nothing is held.
  CHECK(all_of<act::ApplyDirectory>(j.s.on_message(d, j.t0)).size() == 1);
}

TEST_CASE("party session: rejoin after unknown_party, at most once a second", "[unit][party_session]") {
  Joined j;
  j.turn(1, 0, 1);
  REQUIRE(j.s.begin_step());
  j.s.step_done(Joined::report(1, 0), j.t0);
  proto::ErrorMsg e;
  e.code = static_cast<uint16_t>(proto::ErrorCode::unknown_party);
  e.reason = "unknown party";
  auto hellos = sent<proto::Hello>(j.s.on_message(e, j.t0 + milliseconds(10)));
  REQUIRE(hellos.size() == 1);
  CHECK(hellos[0].resume_step == 1);  // the step after the last one trained
  CHECK(sent<proto::Hello>(j.s.on_message(e, j.t0 + milliseconds(500))).empty());
  CHECK(sent<proto::Hello>(j.s.on_message(e, j.t0 + milliseconds(1100))).size() == 1);
  SECTION("welcomed back at its place: the directory is applied") {
    auto out = j.s.on_message(welcome(), j.t0 + milliseconds(1200));
    CHECK(all_of<act::ApplyDirectory>(out).size() == 1);
    CHECK(all_of<act::Join>(out).empty());
  }
  SECTION("welcomed back elsewhere: a protocol error") {
    auto fails = all_of<act::Fail>(j.s.on_message(welcome(0), j.t0 + milliseconds(1200)));
    REQUIRE(fails.size() == 1);
    CHECK(fails[0].kind == act::FailKind::protocol);
  }
}

TEST_CASE("party session: the hub lost: checkpoint, exit 3", "[unit][party_session]") {
  Joined j;
  CHECK(j.s.on_tick(j.t0 + milliseconds(2900), j.t0).empty());
  auto out = j.s.on_tick(j.t0 + milliseconds(3100), j.t0);
  REQUIRE(out.size() == 2);
  CHECK(std::holds_alternative<act::Checkpoint>(out[0]));
  CHECK(std::get<act::Exit>(out[1]).code == 3);
  CHECK(j.s.on_tick(j.t0 + milliseconds(4000), j.t0).empty());
}

TEST_CASE("party session: stop -> final evaluation, pool, export, bye; release -> exit",
          "[unit][party_session]") {
  Joined j;
  proto::Stop stop;
  stop.reason = "finished";
  auto out = j.s.on_message(stop, j.t0);
  REQUIRE(all_of<act::PrepareFinish>(out).size() == 1);
  CHECK(j.s.heartbeat_state() == "finishing");
  CHECK(all_of<act::PrepareFinish>(j.s.on_message(stop, j.t0)).empty());  // once
  CHECK(sent<proto::PoolRequest>(j.s.finish_prepared(j.t0)).size() == 1);
  SECTION("a pool arrives") {
    proto::Pool pool;
    pool.step = 12;
    auto ex = all_of<act::Export>(j.s.on_message(pool, j.t0));
    REQUIRE(ex.size() == 1);
    CHECK(ex[0].pool.step == 12);
    out = j.s.exported(true, j.t0);
    auto fin = all_of<act::Finished>(out);
    REQUIRE(fin.size() == 1);
    CHECK(fin[0].exported);
    CHECK(fin[0].reason == "finished");
    REQUIRE(sent<proto::Bye>(out).size() == 1);
  }
  SECTION("no pool in time") {
    out = j.s.on_tick(j.t0 + milliseconds(60100), j.t0 + milliseconds(60000));
    auto fin = all_of<act::Finished>(out);
    REQUIRE(fin.size() == 1);
    CHECK_FALSE(fin[0].exported);
    CHECK(sent<proto::Bye>(out).size() == 1);
  }
  CHECK(j.s.finished());
  CHECK(j.s.heartbeat_state() == "done");
  proto::Stop release;
  release.reason = "release";
  auto exits = all_of<act::Exit>(j.s.on_message(release, j.t0));
  REQUIRE(exits.size() == 1);
  CHECK(exits[0].code == 0);
}

TEST_CASE("party session: after the bye a silent hub means it finished", "[unit][party_session]") {
  SessionOptions o = options();
  o.save_on_exit = false;
  const auto t0 = Clock::now();
  PartySession s(o, hello(), t0);
  s.start(0, t0);
  s.on_message(welcome(), t0);
  proto::Stop stop;
  stop.reason = "operator";
  s.on_message(stop, t0);
  auto out = s.finish_prepared(t0);  // no pool wanted
  CHECK(sent<proto::Bye>(out).size() == 1);
  CHECK(s.on_tick(t0 + milliseconds(400), t0).empty());
  auto exits = all_of<act::Exit>(s.on_tick(t0 + milliseconds(600), t0));
  REQUIRE(exits.size() == 1);
  CHECK(exits[0].code == 0);
}

TEST_CASE("party session: a signal ends the open turn, checkpoints and says bye", "[unit][party_session]") {
  Joined j;
  j.turn(4, 0, 3);
  REQUIRE(j.s.begin_step());
  j.s.step_done(Joined::report(4, 0), j.t0);
  auto out = j.s.on_signal(j.t0);
  auto done = sent<proto::TurnDone>(out);
  REQUIRE(done.size() == 1);
  CHECK_FALSE(done[0].ok);
  CHECK(done[0].steps_done == 1);
  CHECK(done[0].reason == "party stopping (signal)");
  CHECK(all_of<act::Checkpoint>(out).size() == 1);
  REQUIRE(sent<proto::Bye>(out).size() == 1);
  CHECK(sent<proto::Bye>(out)[0].reason == "signal");
  CHECK(std::holds_alternative<act::Exit>(out.back()));
  CHECK_FALSE(j.s.begin_step());
}

TEST_CASE("party session: checkpoint and snapshot requests from the hub", "[unit][party_session]") {
  Joined j;
  proto::CheckpointRequest c;
  c.step = 8;
  auto cps = all_of<act::Checkpoint>(j.s.on_message(c, j.t0));
  REQUIRE(cps.size() == 1);
  CHECK(cps[0].hub_step == std::optional<int64_t>(8));
  auto done = sent<proto::CheckpointDone>(j.s.checkpoint_done(8, false, "", "disk full"));
  REQUIRE(done.size() == 1);
  CHECK_FALSE(done[0].ok);
  CHECK(done[0].reason == "disk full");
  proto::Heartbeat hb;
  hb.step = 17;
  j.s.on_message(hb, j.t0);  // the federation is at step 17
  proto::SnapshotRequest sr;
  sr.snapshot_id = 3;
  auto snaps = all_of<act::SendSnapshot>(j.s.on_message(sr, j.t0));
  REQUIRE(snaps.size() == 1);
  CHECK(snaps[0].snapshot_id == 3);
  CHECK(snaps[0].step == 17);
}

TEST_CASE("party session and hub state in one process: join, turns, reports, the end",
          "[unit][party_session]") {
  HubConfig cfg = test::small_hub_config({"a"});
  test::MemoryStore store;
  const auto t0 = Clock::now();
  hub::HubState hub(cfg, store, "run-x", t0);
  SessionOptions o = options();
  o.save_on_exit = false;
  proto::Hello h = test::hello_for(cfg, "a");
  PartySession s(o, h, t0);
  const std::string peer = "party-a";
  // Delivers what the session sends to the hub, and the hub's answers for this party back.
  std::vector<Action> pending = s.start(0, t0);
  int steps = 0, exits = 0;
  for (int round = 0; round < 200 && exits == 0; ++round) {
    std::vector<Action> next;
    for (auto& a : pending) {
      if (auto* snd = std::get_if<act::Send>(&a)) {
        for (auto& out : hub.on_message(peer, "", snd->message, t0)) {
          if (out.peer != peer) continue;
          auto more = s.on_message(out.message, t0);
          next.insert(next.end(), more.begin(), more.end());
        }
      } else if (auto* snap = std::get_if<act::SendSnapshot>(&a)) {
        for (auto& out :
             hub.on_message(peer, "", test::snapshot_for(cfg, 0, snap->snapshot_id, snap->step), t0)) {
          auto more = s.on_message(out.message, t0);
          next.insert(next.end(), more.begin(), more.end());
        }
      } else if (std::holds_alternative<act::PrepareFinish>(a)) {
        auto more = s.finish_prepared(t0);
        next.insert(next.end(), more.begin(), more.end());
      } else if (std::holds_alternative<act::Exit>(a)) {
        ++exits;
      }
    }
    for (auto& out : hub.on_tick(t0)) {
      if (out.peer != peer) continue;
      auto more = s.on_message(out.message, t0);
      next.insert(next.end(), more.begin(), more.end());
    }
    if (auto order = s.begin_step()) {
      proto::StepReport r = test::report_for(cfg, order->turn_id, order->step);
      auto more = s.step_done(r, t0);
      next.insert(next.end(), more.begin(), more.end());
      ++steps;
    }
    pending = std::move(next);
  }
  CHECK(steps == 12);  // train.steps of small_hub_config
  CHECK(hub.step() == 12);
  CHECK(s.finished());
  CHECK(exits == 1);
  CHECK(hub.finished());
}

TEST_CASE("party session: a stop or checkpoint request during a turn waits for the turn's end",
          "[unit][party_session]") {
  Joined j;
  j.turn(2, 0, 2);
  REQUIRE(j.s.begin_step());
  j.s.step_done(Joined::report(2, 0), j.t0);
  proto::Stop stop;
  stop.reason = "operator";
  proto::CheckpointRequest c;
  c.step = 1;
  proto::Directory d;
  d.directory = welcome().directory;
  CHECK(j.s.on_message(stop, j.t0).empty());  // between two steps of the turn: held
  CHECK(j.s.on_message(c, j.t0).empty());
  CHECK(all_of<act::ApplyDirectory>(j.s.on_message(d, j.t0)).size() == 1);  // not turn-scoped
  auto order = j.s.begin_step();
  REQUIRE(order);  // the turn goes on
  CHECK(order->step == 1);
  auto out = j.s.step_done(Joined::report(2, 1), j.t0);
  REQUIRE(out.size() == 4);
  CHECK(std::holds_alternative<proto::StepReport>(std::get<act::Send>(out[0]).message));
  CHECK(std::holds_alternative<proto::TurnDone>(std::get<act::Send>(out[1]).message));
  CHECK(std::holds_alternative<act::PrepareFinish>(out[2]));  // in arrival order, after the turn
  CHECK(std::get<act::Checkpoint>(out[3]).hub_step == std::optional<int64_t>(1));
}
