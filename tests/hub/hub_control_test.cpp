// Unit tests of HubState without sockets (manual clock, in-memory store): control, checkpoints,
// status, expert-pool snapshots, the end sequence and refused message types.
#include <catch2/catch.hpp>

#include <cstring>

#include "hub_test_util.h"
#include "proto/wire_tensor.h"

using namespace pcmoe;
using namespace pcmoe::hub;
using test::HubHarness;
using test::of_type;
using test::only_error;
using test::only_reject;
using test::the_turn;

TEST_CASE("control: pause, resume, stop, unknown", "[unit][hub]") {
  HubConfig cfg = test::small_hub_config({"a", "b"});
  HubHarness h(cfg);
  auto t = the_turn(h.join_all());
  auto ack = [&](const std::string& action) {
    auto a = of_type<proto::ControlAck>(h.send("ctl", proto::Control{action}));
    REQUIRE(a.size() == 1);
    return a[0];
  };
  auto p = ack("pause");
  CHECK(p.ok);
  CHECK_THAT(p.message, Catch::Contains("finishes first"));
  CHECK(h.hub().state_name() == "paused");
  CHECK_FALSE(ack("pause").ok);
  // The current turn finishes; no new one is granted while paused.
  auto out = h.play(t);
  CHECK(of_type<proto::Turn>(out).empty());
  CHECK(of_type<proto::Turn>(h.tick()).empty());
  auto r = of_type<proto::ControlAck>(h.send("ctl", proto::Control{"resume"}));
  CHECK(r[0].ok);
  CHECK(h.hub().state_name() == "training");
  CHECK_FALSE(ack("resume").ok);
  auto u = ack("explode");
  CHECK_FALSE(u.ok);
  CHECK(u.message == "unknown action 'explode' (expected one of: pause, resume, checkpoint, snapshot, stop)");
  // Stop: the turn in progress finishes first, then the final snapshot round.
  auto s = ack("stop");
  CHECK(s.ok);
  CHECK(h.hub().state_name() == "stopping");
  CHECK(h.hub().stop_reason() == "operator");
  CHECK_FALSE(ack("stop").ok);
  CHECK_FALSE(ack("pause").ok);
  CHECK(of_type<proto::SnapshotRequest>(h.tick()).empty());
  out = h.play(proto::Turn{h.hub().scheduler().active()->turn_id, 0, 1, 1});
  CHECK(of_type<proto::SnapshotRequest>(out).size() == 2);
  CHECK(of_type<proto::Turn>(out).empty());
}

TEST_CASE("control: checkpoint and snapshot wait for the turn; turns wait for them", "[unit][hub]") {
  HubConfig cfg = test::small_hub_config({"a", "b"});
  HubHarness h(cfg);
  auto t = the_turn(h.join_all());
  // A turn is in progress: both are queued.
  auto out = h.send("ctl", proto::Control{"checkpoint"});
  CHECK(of_type<proto::CheckpointRequest>(out).empty());
  CHECK(of_type<proto::ControlAck>(out)[0].ok);
  CHECK_THAT(of_type<proto::ControlAck>(out)[0].message, Catch::Contains("queued"));
  CHECK_FALSE(of_type<proto::ControlAck>(h.send("ctl", proto::Control{"checkpoint"}))[0].ok);
  out = h.send("ctl", proto::Control{"snapshot"});
  CHECK(of_type<proto::SnapshotRequest>(out).empty());
  CHECK_THAT(of_type<proto::ControlAck>(out)[0].message, Catch::Contains("queued"));
  CHECK(h.store().state_writes == 1);  // when training started
  // The turn ends: requests go out, the hub state is written, and no new turn starts.
  out = h.play(t);
  auto cps = of_type<proto::CheckpointRequest>(out);
  REQUIRE(cps.size() == 2);
  CHECK(cps[0].step == 1);
  auto snaps = of_type<proto::SnapshotRequest>(out);
  REQUIRE(snaps.size() == 2);
  CHECK(of_type<proto::Turn>(out).empty());
  CHECK(h.store().state_writes == 2);
  CHECK_THAT(h.store().state, Catch::Contains("\"step\":1") && Catch::Contains("\"round\":0") &&
                                  Catch::Contains("\"turn_index\":1") &&
                                  Catch::Contains("\"running_counts\""));
  // Answers: checkpoint_done is never replied to; the next turn waits for all of them.
  CHECK(h.send(HubHarness::peer("a"), proto::CheckpointDone{1, true, "/ckpt/a", ""}).empty());
  CHECK(h.send(HubHarness::peer("b"), proto::CheckpointDone{1, true, "/ckpt/b", ""}).empty());
  h.send(HubHarness::peer("a"), test::snapshot_for(cfg, 0, snaps[0].snapshot_id, 1));
  out = h.send(HubHarness::peer("b"), test::snapshot_for(cfg, 1, snaps[0].snapshot_id, 1));
  CHECK(h.store().pool_writes == 1);
  CHECK(the_turn(out).step_begin == 1);
  // Between turns (paused), a checkpoint goes out at once; a silent party does not block forever.
  h.send("ctl", proto::Control{"pause"});
  h.play(the_turn(out));
  auto ack = of_type<proto::ControlAck>(h.send("ctl", proto::Control{"checkpoint"}));
  CHECK(ack[0].ok);
  CHECK_THAT(ack[0].message, Catch::Contains("checkpoint at step 2 requested from 2 live parties"));
}

TEST_CASE("status: contents", "[unit][hub]") {
  HubConfig cfg = test::small_hub_config({"a", "b"});
  HubHarness h(cfg);
  auto t = the_turn(h.join_all());
  const auto& holder = h.hub().registry().at(h.hub().scheduler().active()->party);
  proto::StepReport r = test::report_for(cfg, t.turn_id, 0);
  r.eval_loss = 2.75;
  h.send(holder.peer, r);
  h.advance(1500);
  auto st = of_type<proto::Status>(h.send("anyone", proto::StatusRequest{true}));
  REQUIRE(st.size() == 1);
  const proto::Status& s = st[0];
  CHECK(s.run_id == "run-test");
  CHECK(s.state == "training");
  CHECK(s.step == 1);
  CHECK(s.total_steps == 12);
  CHECK(s.turn_party == holder.id);
  CHECK(s.uptime_s == Approx(1.5));
  CHECK(s.moe_layers == std::vector<uint32_t>{0, 1});
  CHECK(s.placement == std::vector<std::vector<uint32_t>>{{0, 1, 0, 1}, {0, 1, 0, 1}});
  CHECK(s.load_running[0] == std::vector<double>{0.1, 0.2, 0.3, 0.4});
  CHECK(s.pool_step == -1);
  REQUIRE(s.parties.size() == 2);
  const proto::PartyStatus& ps = s.parties[holder.index];
  CHECK(ps.party_id == holder.id);
  CHECK(ps.alive);
  CHECK(ps.steps_done == 1);
  CHECK(ps.tokens == 1024);
  CHECK(ps.last_loss == Approx(3.0));
  CHECK(ps.last_eval_loss == Approx(2.75));
  CHECK(ps.tokens_per_s == Approx(10240));
  CHECK(ps.peak_memory_bytes == (300u << 20));
  CHECK(ps.memory_budget_bytes == (1u << 30));
  CHECK(ps.bytes_sent == 1000);
  CHECK(ps.bytes_received == 2000);
  CHECK(ps.endpoint == "tcp://127.0.0.1:7001");
  CHECK(ps.last_seen_ms_ago == Approx(1500));
  // Without load.
  auto lean = of_type<proto::Status>(h.send("anyone", proto::StatusRequest{false}));
  CHECK(lean[0].load_running.empty());
}

TEST_CASE("snapshots: a round builds the pool; bad snapshots are refused", "[unit][hub]") {
  HubConfig cfg = test::small_hub_config({"a", "b"});
  HubHarness h(cfg);
  auto t = the_turn(h.join_all());
  h.send("ctl", proto::Control{"pause"});
  h.play(t);  // between turns: the round starts at once
  auto out = h.send("ctl", proto::Control{"snapshot"});
  auto reqs = of_type<proto::SnapshotRequest>(out);
  REQUIRE(reqs.size() == 2);
  const uint64_t id = reqs[0].snapshot_id;
  CHECK_FALSE(of_type<proto::ControlAck>(h.send("ctl", proto::Control{"snapshot"}))[0].ok);  // one at a time

  // A backbone weight smuggled in: refused, the hub keeps nothing of it.
  proto::Snapshot bad = test::snapshot_for(cfg, 0, id, 0);
  bad.names[2] = "backbone.tok_emb";
  auto e = only_error(h.send(HubHarness::peer("a"), bad));
  CHECK(e.code == uint16_t(proto::ErrorCode::bad_field));
  CHECK(e.in_reply_to == uint16_t(proto::MsgType::snapshot));
  // A shape mismatch: refused.
  proto::Snapshot wrong = test::snapshot_for(cfg, 0, id, 0);
  wrong.tensors[0] = proto::make_f32({4, 4}, std::vector<float>(16, 1.f));
  CHECK(only_error(h.send(HubHarness::peer("a"), wrong)).code == uint16_t(proto::ErrorCode::bad_shape));
  // Another party's experts: refused.
  CHECK(only_error(h.send(HubHarness::peer("a"), test::snapshot_for(cfg, 1, id, 0))).code ==
        uint16_t(proto::ErrorCode::bad_field));
  // A stale id: out of order.
  CHECK(only_error(h.send(HubHarness::peer("a"), test::snapshot_for(cfg, 0, id + 5, 0))).code ==
        uint16_t(proto::ErrorCode::out_of_order));
  CHECK(h.store().pool_writes == 0);

  CHECK(h.send(HubHarness::peer("a"), test::snapshot_for(cfg, 0, id, 7, 1.0f)).empty());
  CHECK(h.store().pool_writes == 0);
  h.send(HubHarness::peer("b"), test::snapshot_for(cfg, 1, id, 5, 2.0f));
  REQUIRE(h.store().pool_writes == 1);
  const TensorFile& pool = *h.store().pool;
  CHECK(pool.tensors.size() == 2 * 4 * 3);
  CHECK(pool.meta_at("step") == "5");  // the oldest snapshot (parties normally agree)
  CHECK(!pool.meta_at("created").empty());
  CHECK(pool.tensors[0].name == "l0.e0.w1");
  for (const auto& t : pool.tensors) {
    auto p = parse_expert_param(t.name);
    REQUIRE(p);
    float v;
    std::memcpy(&v, t.bytes.data(), 4);
    CHECK(v == (p->expert % 2 == 0 ? 1.0f : 2.0f));
  }
  CHECK(h.hub().pool().step() == 5);
  CHECK(of_type<proto::Pool>(h.send(HubHarness::peer("b"), proto::PoolRequest{6}))[0].step == -1);  // too old
  auto pm = of_type<proto::Pool>(h.send(HubHarness::peer("b"), proto::PoolRequest{5}));
  REQUIRE(pm.size() == 1);
  CHECK(pm[0].step == 5);
  CHECK(pm[0].names.size() == 24);
  CHECK(pm[0].tensors[5].shape == std::vector<int64_t>{16, 8});
}

TEST_CASE("snapshots: a lost party's experts come from the previous pool", "[unit][hub]") {
  HubConfig cfg = test::small_hub_config({"a", "b"});
  HubHarness h(cfg);
  h.send("ctl", proto::Control{"pause"});
  h.join_all();  // paused: no turn, so snapshot rounds start at once
  // Pool request before any pool: step -1, empty.
  auto none = of_type<proto::Pool>(h.send(HubHarness::peer("a"), proto::PoolRequest{0}));
  CHECK(none[0].step == -1);
  CHECK(none[0].names.empty());
  uint64_t id = of_type<proto::SnapshotRequest>(h.send("ctl", proto::Control{"snapshot"}))[0].snapshot_id;
  h.send(HubHarness::peer("a"), test::snapshot_for(cfg, 0, id, 3, 1.0f));
  h.send(HubHarness::peer("b"), test::snapshot_for(cfg, 1, id, 3, 2.0f));
  REQUIRE(h.store().pool_writes == 1);
  // b goes silent; a second round completes from a alone plus b's previous experts.
  id = of_type<proto::SnapshotRequest>(h.send("ctl", proto::Control{"snapshot"}))[0].snapshot_id;
  h.send(HubHarness::peer("a"), test::snapshot_for(cfg, 0, id, 9, 3.0f));
  h.advance(cfg.hub.party_timeout_ms / 2);
  h.send(HubHarness::peer("a"), proto::Heartbeat{});
  h.advance(cfg.hub.party_timeout_ms / 2 + 10);
  h.tick();
  REQUIRE_FALSE(h.hub().registry().at(1).alive);
  REQUIRE(h.store().pool_writes == 2);
  CHECK(h.store().pool->meta_at("step") == "3");
  float v;
  std::memcpy(&v, h.store().pool->find("l0.e1.w1")->bytes.data(), 4);
  CHECK(v == 2.0f);
  std::memcpy(&v, h.store().pool->find("l0.e0.w1")->bytes.data(), 4);
  CHECK(v == 3.0f);
}

TEST_CASE("snapshots every N steps, between turns", "[unit][hub]") {
  HubConfig cfg = test::small_hub_config({"a", "b"});
  cfg.hub.snapshot_every = 4;
  HubHarness h(cfg);
  // The first round goes out when training starts, before any turn.
  auto out = h.join_all();
  REQUIRE(of_type<proto::SnapshotRequest>(out).size() == 2);
  CHECK(of_type<proto::Turn>(out).empty());
  out = h.answer_snapshots(out);
  CHECK(h.store().pool_writes == 1);
  CHECK(h.hub().pool().step() == 0);
  int rounds = 0;
  while (h.hub().step() < 8) {
    out = h.play(the_turn(out));
    if (auto r = of_type<proto::SnapshotRequest>(out); !r.empty()) {
      ++rounds;
      CHECK(h.hub().step() % 4 == 0);
      CHECK(of_type<proto::Turn>(out).empty());  // the next turn waits for the round
      for (uint32_t i = 0; i < 2; ++i) {
        out = h.send(HubHarness::peer(h.hub().registry().at(i).id),
                     test::snapshot_for(cfg, i, r[0].snapshot_id, h.hub().step() - 1));
      }
    }
  }
  CHECK(rounds == 2);
  CHECK(h.store().pool_writes == 3);
  CHECK(h.hub().pool().step() == 7);
}

TEST_CASE("the end: final snapshot, stop, byes, release", "[unit][hub]") {
  HubConfig cfg = test::small_hub_config({"a", "b"});
  cfg.train.steps = 2;
  HubHarness h(cfg);
  auto out = h.join_all();
  out = h.play(the_turn(out));
  out = h.play(the_turn(out));
  CHECK(h.hub().step() == 2);
  auto reqs = of_type<proto::SnapshotRequest>(out);
  REQUIRE(reqs.size() == 2);
  CHECK(of_type<proto::Stop>(out).empty());
  h.send(HubHarness::peer("a"), test::snapshot_for(cfg, 0, reqs[0].snapshot_id, 1));
  out = h.send(HubHarness::peer("b"), test::snapshot_for(cfg, 1, reqs[0].snapshot_id, 1));
  CHECK(h.store().pool_writes == 1);
  auto stops = of_type<proto::Stop>(out);
  REQUIRE(stops.size() == 2);
  CHECK(stops[0].reason == "finished");
  // Parties still fetch the pool and keep heartbeating; then they say bye.
  CHECK(of_type<proto::Pool>(h.send(HubHarness::peer("a"), proto::PoolRequest{0}))[0].step == 1);
  CHECK(h.send(HubHarness::peer("a"), proto::Bye{"exported"}).empty());
  CHECK(h.hub().registry().at(0).alive);  // still serving experts until the release
  CHECK(h.hub().state_name() == "stopping");
  out = h.send(HubHarness::peer("b"), proto::Bye{"exported"});
  auto release = of_type<proto::Stop>(out);
  REQUIRE(release.size() == 2);
  CHECK(release[0].reason == "release");
  CHECK(h.hub().finished());
  CHECK(h.hub().state_name() == "finished");
  CHECK(h.store().state_writes == 2);  // when training started, and at the end
  CHECK_THAT(h.store().state, Catch::Contains("\"state\":\"finished\""));
  // A late hello is turned away.
  CHECK(only_reject(h.join("a")).code == uint16_t(proto::ErrorCode::stopping));
}

TEST_CASE("the end: missing byes and snapshots time out", "[unit][hub]") {
  HubConfig cfg = test::small_hub_config({"a", "b"});
  HubOptions o;
  o.timeouts.snapshot = std::chrono::milliseconds(300);
  o.timeouts.bye = std::chrono::milliseconds(400);
  HubHarness h(cfg, o);
  h.join_all();
  auto out = h.hub().request_stop("operator", h.now());
  REQUIRE(of_type<proto::SnapshotRequest>(out).empty());  // a turn is in progress: it finishes first
  out = h.play(proto::Turn{h.hub().scheduler().active()->turn_id, 0, 0, 1});
  REQUIRE(of_type<proto::SnapshotRequest>(out).size() == 2);
  h.advance(301);
  h.heartbeat_all();
  out = h.tick();
  CHECK(of_type<proto::Stop>(out).size() == 2);  // nobody answered the snapshot: no pool, but stop anyway
  CHECK(h.hub().pool().empty());
  h.send(HubHarness::peer("a"), proto::Bye{"ok"});
  h.advance(401);
  h.heartbeat_all();
  out = h.tick();
  CHECK(of_type<proto::Stop>(out).size() == 2);
  CHECK(of_type<proto::Stop>(out)[0].reason == "release");
  CHECK(h.hub().finished());
}

TEST_CASE("a party that says bye before the end leaves", "[unit][hub]") {
  HubHarness h(test::small_hub_config({"a", "b"}));
  h.join_all();
  auto out = h.send(HubHarness::peer("a"), proto::Bye{"maintenance"});
  CHECK_FALSE(h.hub().registry().at(0).alive);
  auto d = of_type<proto::Directory>(out, HubHarness::peer("b"));
  REQUIRE(d.size() == 1);
  CHECK_FALSE(d[0].directory[0].alive);
}

TEST_CASE("types the hub never accepts are refused without a state change", "[unit][hub]") {
  HubConfig cfg = test::small_hub_config({"a", "b"});
  HubHarness h(cfg);
  h.join_all();
  proto::ExpertForward f;
  f.requester = "a";
  f.expert_ids = proto::make_i32({1}, {0});
  f.rows = proto::make_f32({1, 8}, std::vector<float>(8, 0.f));
  auto e = only_error(h.send(HubHarness::peer("a"), f));
  CHECK(e.code == uint16_t(proto::ErrorCode::unknown_type));
  CHECK(e.in_reply_to == uint16_t(proto::MsgType::expert_forward));
  CHECK_THAT(e.reason, Catch::Contains("expert traffic"));
  e = only_error(h.send(HubHarness::peer("a"), proto::Welcome{}));
  CHECK(e.code == uint16_t(proto::ErrorCode::unknown_type));
  CHECK_THAT(e.reason, Catch::Contains("sent by the hub"));
  // A decode error is answered with its code and request id.
  auto out = h.hub().on_decode_error(
      "x", proto::DecodeError(proto::ErrorCode::malformed, "garbage", proto::MsgType{0}, 9), h.now());
  auto d = only_error(out);
  CHECK(d.code == uint16_t(proto::ErrorCode::malformed));
  CHECK(d.request_id == 9);
  // Errors from parties are never answered.
  CHECK(h.send(HubHarness::peer("a"), proto::ErrorMsg{1, "x", 0, 0}).empty());
  CHECK(h.hub().bad_messages() == 3);
}

TEST_CASE("the end: a queued checkpoint is taken before the final snapshot", "[unit][hub]") {
  HubConfig cfg = test::small_hub_config({"a", "b"});
  HubOptions o;
  o.timeouts.checkpoint = std::chrono::milliseconds(500);
  HubHarness h(cfg, o);
  auto t = the_turn(h.join_all());
  h.send("ctl", proto::Control{"checkpoint"});
  h.send("ctl", proto::Control{"stop"});
  auto out = h.play(t);
  CHECK(of_type<proto::CheckpointRequest>(out).size() == 2);
  CHECK(of_type<proto::SnapshotRequest>(out).empty());
  h.send(HubHarness::peer("a"), proto::CheckpointDone{1, true, "/ckpt/a", ""});
  // b never answers: after the checkpoint timeout the end goes on.
  h.advance(501);
  h.heartbeat_all();
  out = h.tick();
  CHECK(of_type<proto::SnapshotRequest>(out).size() == 2);
}
