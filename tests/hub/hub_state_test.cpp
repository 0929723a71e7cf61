// Unit tests of HubState without sockets (manual clock, in-memory store): registration, the start
// condition, turns, router statistics, heartbeats, liveness and failed turns.
#include <catch2/catch.hpp>

#include "common/turns.h"
#include "hub_test_util.h"

using namespace pcmoe;
using namespace pcmoe::hub;
using test::HubHarness;
using test::of_type;
using test::only_error;
using test::only_reject;
using test::the_turn;

TEST_CASE("hello: welcome contents", "[unit][hub]") {
  HubHarness h(test::small_hub_config({"a", "b", "c"}));
  auto out = h.join("b");
  auto w = of_type<proto::Welcome>(out, HubHarness::peer("b"));
  REQUIRE(w.size() == 1);
  CHECK(w[0].party_index == 1);
  CHECK(w[0].run_id == "run-test");
  CHECK(w[0].total_steps == 12);
  CHECK(w[0].step == 0);
  CHECK(w[0].steps_per_turn == 1);
  CHECK(w[0].moe_layers == std::vector<uint32_t>{0, 1});
  CHECK(w[0].n_experts == 4);
  CHECK(w[0].placement == std::vector<std::vector<uint32_t>>{{0, 1, 2, 0}, {0, 1, 2, 0}});
  REQUIRE(w[0].directory.size() == 3);
  CHECK(w[0].directory[0].party_id == "a");
  CHECK_FALSE(w[0].directory[0].alive);
  CHECK(w[0].directory[1].party_id == "b");
  CHECK(w[0].directory[1].index == 1);
  CHECK(w[0].directory[1].alive);
  CHECK(w[0].directory[1].endpoint == "tcp://127.0.0.1:7001");
  CHECK(w[0].directory_epoch == 1);
  CHECK(of_type<proto::Directory>(out).empty());  // nobody else to tell
  // The next joiner's arrival is broadcast to b with a new epoch.
  out = h.join("c");
  auto d = of_type<proto::Directory>(out, HubHarness::peer("b"));
  REQUIRE(d.size() == 1);
  CHECK(d[0].directory_epoch == 2);
  CHECK(d[0].directory[2].alive);
  CHECK(of_type<proto::Directory>(out, HubHarness::peer("c")).empty());  // its Welcome has epoch 2
  CHECK(h.hub().state_name() == "waiting");
}

TEST_CASE("hello: rejections", "[unit][hub]") {
  HubConfig cfg = test::small_hub_config({"a", "b"});
  HubHarness h(cfg);
  proto::Hello hello = test::hello_for(cfg, "a");

  SECTION("unknown party") {
    hello.party_id = "mallory";
    auto r = only_reject(h.send("p", hello));
    CHECK(r.code == uint16_t(proto::ErrorCode::unknown_party));
    CHECK(r.reason == "party 'mallory' is not in this hub's config (hub.parties)");
  }
  SECTION("wrong protocol major") {
    hello.proto_major = 9;
    auto r = only_reject(h.send("p", hello));
    CHECK(r.code == uint16_t(proto::ErrorCode::bad_version));
    CHECK_THAT(r.reason, Catch::Contains(fmt::format("9.{}", proto::kProtocolMinor)) &&
                             Catch::Contains(fmt::format("1.{}", proto::kProtocolMinor)));
  }
  SECTION("model hash mismatch") {
    hello.model_hash = "0123456789abcdef";
    auto r = only_reject(h.send("p", hello));
    CHECK(r.code == uint16_t(proto::ErrorCode::config_mismatch));
    CHECK_THAT(r.reason, Catch::Contains("0123456789abcdef") && Catch::Contains(h.hub().model_hash()) &&
                             Catch::Contains("use the same preset (model + train) on every participant"));
  }
  SECTION("bad expert endpoint") {
    hello.expert_endpoint = "nonsense";
    CHECK(only_reject(h.send("p", hello)).code == uint16_t(proto::ErrorCode::bad_field));
  }
  SECTION("a live party cannot be registered twice") {
    h.join("a");
    auto r = only_reject(h.send("other-connection", hello));
    CHECK(r.code == uint16_t(proto::ErrorCode::duplicate_party));
    CHECK(h.hub().registry().at(0).peer == HubHarness::peer("a"));
    // Once the old connection is stale (silent > party_timeout_ms), the new one replaces it.
    h.advance(cfg.hub.party_timeout_ms + 1);
    auto out = h.send("other-connection", hello);
    CHECK(of_type<proto::Welcome>(out).size() == 1);
    CHECK(h.hub().registry().at(0).peer == "other-connection");
  }
  SECTION("a connection speaks for one party") {
    h.join("a");
    auto r = only_reject(h.send(HubHarness::peer("a"), test::hello_for(cfg, "b")));
    CHECK(r.code == uint16_t(proto::ErrorCode::bad_field));
  }
  // Rejected peers leave no trace.
  CHECK(h.hub().registry().at(1).joins == 0);
  CHECK(h.hub().registry().at(1).peer.empty());
}

TEST_CASE("hello: with CURVE the authenticated key must be the party's", "[unit][hub]") {
  HubConfig cfg = test::small_hub_config({"a", "b"});
  const std::string key_a(40, 'A'), key_b(40, 'B'), key_op(40, 'O');
  cfg.hub.parties[0].public_key = key_a;
  cfg.hub.parties[1].public_key = key_b;
  HubOptions o;
  o.curve = true;
  o.operators = {{key_op, "ops"}};
  HubHarness h(cfg, o);
  auto r = only_reject(h.send("p", test::hello_for(cfg, "a"), key_b));
  CHECK(r.code == uint16_t(proto::ErrorCode::unknown_party));
  CHECK_THAT(r.reason, Catch::Contains("party 'a' is configured with key AAAAAAAA"));
  proto::Hello good = test::hello_for(cfg, "a");
  good.curve_public_key = key_b;  // hello must announce the key it authenticated with
  CHECK_THAT(only_reject(h.send("p", good, key_a)).reason, Catch::Contains("hello announces key BBBBBBBB"));
  good.curve_public_key = key_a;
  auto ok = h.send("p", good, key_a);
  REQUIRE(of_type<proto::Welcome>(ok).size() == 1);
  CHECK(of_type<proto::Welcome>(ok)[0].directory[0].curve_public_key == key_a);
  // A message on a's routing id under another key does not speak for a.
  auto e = only_error(h.send("p", proto::Heartbeat{1, 0, "x"}, key_b));
  CHECK(e.code == uint16_t(proto::ErrorCode::unknown_party));
  CHECK(of_type<proto::Heartbeat>(h.send("p", proto::Heartbeat{1, 0, "x"}, key_a)).size() == 1);
  // Control and status only with an operator key (a party's is none).
  CHECK(only_error(h.send("p", proto::Control{"pause"}, key_a)).code ==
        uint16_t(proto::ErrorCode::unknown_party));
  CHECK(only_error(h.send("p", proto::StatusRequest{false}, key_a)).code ==
        uint16_t(proto::ErrorCode::unknown_party));
  CHECK(of_type<proto::ControlAck>(h.send("ctl", proto::Control{"pause"}, key_op))[0].ok);
  CHECK(of_type<proto::Status>(h.send("ctl", proto::StatusRequest{false}, key_op)).size() == 1);
}

TEST_CASE("training starts only when every configured party has joined", "[unit][hub]") {
  HubHarness h(test::small_hub_config({"a", "b", "c"}));
  CHECK(of_type<proto::Turn>(h.join("a")).empty());
  CHECK(of_type<proto::Turn>(h.join("c")).empty());
  CHECK(of_type<proto::Turn>(h.tick()).empty());
  CHECK(h.hub().state_name() == "waiting");
  auto out = h.join("b");
  CHECK(h.hub().state_name() == "training");
  auto t = the_turn(out);
  CHECK(t.step_begin == 0);
  CHECK(t.n_steps == 1);
  CHECK(t.round == 0);
  CHECK(out.back().peer == HubHarness::peer(h.hub().registry().at(round_order(7, 0, {0, 1, 2})[0]).id));
}

TEST_CASE("turns follow TurnSchedule and steps_per_turn; reaching total starts the end", "[unit][hub]") {
  HubConfig cfg = test::small_hub_config({"a", "b", "c"});
  cfg.hub.steps_per_turn = 5;
  cfg.train.steps = 37;
  HubHarness h(cfg);
  TurnSchedule ref(cfg.hub.seed, 3, 5);
  auto out = h.join_all();
  int64_t step = 0;
  while (!of_type<proto::Turn>(out).empty()) {
    auto t = the_turn(out);
    CHECK(t.step_begin == step);
    CHECK(t.n_steps == std::min<int64_t>(5, 37 - step));
    const std::string holder = out.back().peer;
    for (uint32_t k = 0; k < t.n_steps; ++k) {
      INFO("step " << step + k);
      CHECK(holder == HubHarness::peer(h.hub().registry().at(ref.party_at(step + k)).id));
    }
    step += t.n_steps;
    out = h.play(t);
    CHECK(h.hub().step() == step);
  }
  CHECK(step == 37);
  CHECK(h.store().load_lines.size() == 37);
  CHECK(h.hub().state_name() == "stopping");
  CHECK(of_type<proto::SnapshotRequest>(out).size() == 3);  // the final snapshot round
}

TEST_CASE("step reports: statistics, ExpertLoad broadcast and validation", "[unit][hub]") {
  HubConfig cfg = test::small_hub_config({"a", "b"});
  HubHarness h(cfg);
  auto t = the_turn(h.join_all());
  const std::string holder = HubHarness::peer(h.hub().registry().at(h.hub().scheduler().active()->party).id);
  const std::string other = holder == HubHarness::peer("a") ? HubHarness::peer("b") : HubHarness::peer("a");

  SECTION("a bad shape is refused and changes nothing") {
    proto::StepReport r = test::report_for(cfg, t.turn_id, 0);
    r.expert_counts[1].pop_back();
    auto e = only_error(h.send(holder, r));
    CHECK(e.code == uint16_t(proto::ErrorCode::bad_shape));
    CHECK(e.in_reply_to == uint16_t(proto::MsgType::step_report));
    r = test::report_for(cfg, t.turn_id, 0);
    r.gate_mean = {{0.1}};
    CHECK(only_error(h.send(holder, r)).code == uint16_t(proto::ErrorCode::bad_shape));
    CHECK(h.hub().step() == 0);
    CHECK(h.hub().load().steps() == 0);
    CHECK(h.store().load_lines.empty());
  }
  SECTION("reports out of order are refused") {
    CHECK(only_error(h.send(other, test::report_for(cfg, t.turn_id, 0))).code ==
          uint16_t(proto::ErrorCode::out_of_order));
    CHECK(only_error(h.send(holder, test::report_for(cfg, t.turn_id + 1, 0))).code ==
          uint16_t(proto::ErrorCode::out_of_order));
    CHECK_THAT(only_error(h.send(holder, test::report_for(cfg, t.turn_id, 3))).reason,
               Catch::Contains("expected a report for step 0, got step 3"));
    CHECK(only_error(h.send(other, proto::TurnDone{t.turn_id, 1, true, "", ""})).code ==
          uint16_t(proto::ErrorCode::out_of_order));
    CHECK(h.hub().step() == 0);
  }
  SECTION("accepted reports update the load and reach every party") {
    auto out = h.send(holder, test::report_for(cfg, t.turn_id, 0, 2));
    CHECK(h.hub().step() == 1);
    auto loads = of_type<proto::ExpertLoad>(out);
    REQUIRE(loads.size() == 2);
    CHECK(out.size() == 2);
    CHECK(loads[0].step == 0);  // the reported step the load includes
    CHECK(loads[0].running[0] == std::vector<double>{0.1, 0.2, 0.3, 0.4});
    CHECK(loads[0].window == loads[0].running);
    CHECK(loads[0].window_steps == 1);
    CHECK(loads[0].alive == std::vector<uint8_t>{1, 1});
    CHECK(h.store().load_lines.size() == 1);
    CHECK_THAT(h.store().load_lines[0],
               Catch::Contains("\"step\":0") && Catch::Contains("\"counts\":[[2,4,6,8]"));
    const auto& party = h.hub().registry().at(h.hub().scheduler().active()->party);
    CHECK(party.totals.steps_done == 1);
    CHECK(party.totals.tokens == 1024);
    CHECK(party.totals.tokens_per_s == Approx(10240));
    CHECK(party.totals.bytes_sent == 1000);
    // Window of 3 steps: after 4 steps the first leaves it, the running totals keep it.
    out = h.send(holder, proto::TurnDone{t.turn_id, 1, true, "", ""});
    for (int s = 1; s < 4; ++s) {
      auto next = the_turn(out);
      proto::StepReport r = test::report_for(cfg, next.turn_id, s, 1);
      r.expert_counts = {{0, 0, 0, 10}, {0, 0, 0, 10}};
      const std::string p = out.back().peer;
      h.send(p, r);
      out = h.send(p, proto::TurnDone{next.turn_id, 1, true, "", ""});
    }
    CHECK(h.hub().load().window_shares()[0] == std::vector<double>{0, 0, 0, 1});
    CHECK(h.hub().load().running_shares()[0][0] == Approx(2.0 / 50));
  }
}

TEST_CASE("heartbeats are answered with the hub's step and state", "[unit][hub]") {
  HubHarness h(test::small_hub_config({"a", "b"}));
  h.join("a");
  auto out = h.send(HubHarness::peer("a"), proto::Heartbeat{41, 0, "serving"});
  auto hb = of_type<proto::Heartbeat>(out);
  REQUIRE(hb.size() == 1);
  CHECK(hb[0].seq == 41);
  CHECK(hb[0].state == "waiting");
  CHECK(h.hub().registry().at(0).state == "serving");
  // Not registered: refused.
  CHECK(only_error(h.send("stranger", proto::Heartbeat{1, 0, ""})).code ==
        uint16_t(proto::ErrorCode::unknown_party));
}

TEST_CASE("a silent party is lost, masked, skipped, and may rejoin", "[unit][hub]") {
  HubConfig cfg = test::small_hub_config({"a", "b", "c"});
  HubHarness h(cfg);
  auto t = the_turn(h.join_all());
  const uint32_t holder = h.hub().scheduler().active()->party;
  const std::string holder_id = h.hub().registry().at(holder).id;
  // Everyone but the holder keeps heartbeating; the holder goes silent mid-turn.
  h.send(HubHarness::peer(holder_id), test::report_for(cfg, t.turn_id, 0));
  for (int i = 0; i < 6; ++i) {
    h.advance(200);
    for (const auto& p : h.hub().registry().parties()) {
      if (p.alive && p.index != holder) h.send(p.peer, proto::Heartbeat{1, 0, "serving"});
    }
    auto out = h.tick();
    if (!h.hub().registry().at(holder).alive) {
      auto dirs = of_type<proto::Directory>(out);
      REQUIRE(dirs.size() == 2);  // to the two live parties
      CHECK_FALSE(dirs[0].directory[holder].alive);
      CHECK(of_type<proto::Turn>(out).size() == 1);  // its turn was abandoned: the next one starts
      CHECK(out.back().peer != HubHarness::peer(holder_id));
      break;
    }
  }
  REQUIRE_FALSE(h.hub().registry().at(holder).alive);
  CHECK(h.hub().step() == 1);  // its reported step counts
  CHECK(h.hub().registry().at(holder).state == "lost");
  // Its messages are now refused, with a hint.
  CHECK_THAT(only_error(h.send(HubHarness::peer(holder_id), proto::Heartbeat{1, 0, ""})).reason,
             Catch::Contains("marked lost"));
  // Play a few turns: the lost party never gets one.
  for (int i = 0; i < 5; ++i) {
    auto out = h.play(proto::Turn{h.hub().scheduler().active()->turn_id, 0, h.hub().step(), 1});
    REQUIRE(of_type<proto::Turn>(out).size() == 1);
    CHECK(of_type<proto::Turn>(out, HubHarness::peer(holder_id)).empty());
    CHECK(of_type<proto::ExpertLoad>(out)[0].alive[holder] == 0);
  }
  // It rejoins: a Directory with alive=true goes to the others, and it takes turns again later.
  auto out = h.join(holder_id);
  auto dirs = of_type<proto::Directory>(out);
  REQUIRE(dirs.size() == 2);
  CHECK(dirs[0].directory[holder].alive);
  bool got_turn = false;
  for (int i = 0; i < 6 && !got_turn; ++i) {
    auto o = h.play(proto::Turn{h.hub().scheduler().active()->turn_id, 0, h.hub().step(), 1});
    got_turn = !of_type<proto::Turn>(o, HubHarness::peer(holder_id)).empty();
  }
  CHECK(got_turn);
}

TEST_CASE("failed turns: a suspect named three times in a row is lost", "[unit][hub]") {
  HubConfig cfg = test::small_hub_config({"a", "b", "c"});
  HubHarness h(cfg);
  h.join_all();
  for (int i = 0; i < 3; ++i) {
    CHECK(h.hub().registry().at(2).alive);
    const auto t = *h.hub().scheduler().active();
    const std::string holder = h.hub().registry().at(t.party).id;
    h.send(HubHarness::peer(holder), proto::TurnDone{t.turn_id, 0, false, "expert call timed out", "c"});
  }
  CHECK_FALSE(h.hub().registry().at(2).alive);
  CHECK(h.hub().step() == 0);
}

TEST_CASE("failed turns: a silent suspect is lost at once", "[unit][hub]") {
  HubConfig cfg = test::small_hub_config({"a", "b"});
  HubHarness h(cfg);
  h.join_all();
  const auto& t = *h.hub().scheduler().active();
  const std::string holder = h.hub().registry().at(t.party).id;
  const std::string suspect = holder == "a" ? "b" : "a";
  h.advance(cfg.hub.party_timeout_ms + 5);
  h.send(HubHarness::peer(holder), proto::TurnDone{t.turn_id, 0, false, "no answer", suspect});
  CHECK_FALSE(h.hub().registry().find_id(suspect)->alive);
}
