// Unit tests of the hub's parts without HubState: expert-parameter names and snapshot validation,
// global expert load, the turn scheduler against common/turns.h, log rate limiting, pcmoe-ctl's
// endpoint rule and status rendering.
#include <catch2/catch.hpp>

#include "common/turns.h"
#include "hub/ctl.h"
#include "hub/load_stats.h"
#include "hub/log_limiter.h"
#include "hub/pool_layout.h"
#include "hub/scheduler.h"
#include "hub/status_format.h"
#include "hub_test_util.h"
#include "proto/wire_tensor.h"

using namespace pcmoe;
using namespace pcmoe::hub;

TEST_CASE("expert parameter names parse only in canonical form", "[unit][hub]") {
  auto p = parse_expert_param("l1.e5.w1");
  REQUIRE(p);
  CHECK(p->layer == 1);
  CHECK(p->expert == 5);
  CHECK(p->param == "w1");
  CHECK(parse_expert_param("l0.e0.w3"));
  CHECK(parse_expert_param("l12.e63.w2"));
  for (const char* bad :
       {"backbone.tok_emb", "l1.e5.w4", "l01.e5.w1", "l1.e05.w1", "l-1.e5.w1", "l1.e5", "l1.e5.w1.x",
        "l.e5.w1", "L1.e5.w1", "l1.x5.w1", "l1.e5.", "", "l1.e99999999999.w1", "l1.e5.w1 "}) {
    INFO(bad);
    CHECK_FALSE(parse_expert_param(bad));
  }
  CHECK(expert_param_name(3, 7, "w2") == "l3.e7.w2");
}

TEST_CASE("pool layout: placement e mod n, names, shapes and snapshot checks", "[unit][hub]") {
  HubConfig cfg = test::small_hub_config({"a", "b", "c"});
  PoolLayout layout(cfg.model, 3);
  CHECK(layout.moe_layers() == std::vector<uint32_t>{0, 1});
  CHECK(layout.placement() == std::vector<std::vector<uint32_t>>{{0, 1, 2, 0}, {0, 1, 2, 0}});
  CHECK(layout.names_of(0) == std::vector<std::string>{"l0.e0.w1", "l0.e0.w2", "l0.e0.w3", "l0.e3.w1",
                                                       "l0.e3.w2", "l0.e3.w3", "l1.e0.w1", "l1.e0.w2",
                                                       "l1.e0.w3", "l1.e3.w1", "l1.e3.w2", "l1.e3.w3"});
  CHECK(layout.pool_size() == 2 * 4 * 3);
  CHECK(layout.shape_of("w1") == std::vector<int64_t>{16, 8});
  CHECK(layout.shape_of("w2") == std::vector<int64_t>{8, 16});

  proto::Snapshot good = test::snapshot_for(cfg, 1, 1, 5);
  CHECK_FALSE(layout.check(1, good));

  SECTION("a backbone weight is refused") {
    proto::Snapshot s = good;
    s.names[0] = "backbone.tok_emb";
    auto p = layout.check(1, s);
    REQUIRE(p);
    CHECK(p->code == proto::ErrorCode::bad_field);
    CHECK_THAT(p->reason, Catch::Contains("backbone.tok_emb") && Catch::Contains("only keeps experts"));
  }
  SECTION("another host's expert is refused") {
    CHECK(layout.check(0, good)->code == proto::ErrorCode::bad_field);
  }
  SECTION("a layer that is not MoE or an expert out of range is refused") {
    proto::Snapshot s = good;
    s.names[0] = "l2.e1.w1";
    CHECK(layout.check(1, s)->code == proto::ErrorCode::bad_field);
    s.names[0] = "l0.e4.w1";
    CHECK(layout.check(1, s)->code == proto::ErrorCode::bad_field);
  }
  SECTION("a wrong shape is refused") {
    proto::Snapshot s = good;
    s.tensors[0] = proto::make_f32({8, 16}, std::vector<float>(128, 0.f));  // w1 transposed
    auto p = layout.check(1, s);
    REQUIRE(p);
    CHECK(p->code == proto::ErrorCode::bad_shape);
    CHECK_THAT(p->reason, Catch::Contains("[8,16]") && Catch::Contains("[16,8]"));
  }
  SECTION("duplicates and missing tensors are refused") {
    proto::Snapshot s = good;
    s.names[1] = s.names[0];
    s.tensors[1] = s.tensors[0];
    CHECK_THAT(layout.check(1, s)->reason, Catch::Contains("twice"));
    proto::Snapshot t = good;
    t.names.pop_back();
    t.tensors.pop_back();
    CHECK_THAT(layout.check(1, t)->reason, Catch::Contains("lacks"));
  }
  SECTION("GELU experts have no w3") {
    cfg.model.activation = "gelu";
    PoolLayout gelu(cfg.model, 3);
    CHECK(gelu.names_of(1) == std::vector<std::string>{"l0.e1.w1", "l0.e1.w2", "l1.e1.w1", "l1.e1.w2"});
    CHECK(gelu.check(1, good)->code == proto::ErrorCode::bad_field);  // w3 is not a parameter here
  }
}

TEST_CASE("expert load: running and window shares", "[unit][hub]") {
  ExpertLoadStats s(2, 4, 2);
  // No tokens yet: uniform.
  CHECK(s.running_shares() == ShareMatrix{{0.25, 0.25, 0.25, 0.25}, {0.25, 0.25, 0.25, 0.25}});
  CHECK(s.shape_error({{1, 2, 3, 4}, {1, 2, 3, 4}}).empty());
  CHECK_THAT(s.shape_error({{1, 2, 3, 4}}), Catch::Contains("1 rows, expected 2"));
  CHECK_THAT(s.shape_error({{1, 2, 3, 4}, {1, 2, 3}}), Catch::Contains("row 1 has 3 entries"));

  s.add({{4, 0, 0, 0}, {0, 0, 0, 0}});
  s.add({{0, 4, 0, 0}, {0, 0, 0, 0}});
  CHECK(s.running_shares()[0] == std::vector<double>{0.5, 0.5, 0, 0});
  CHECK(s.running_shares()[1] == std::vector<double>{0.25, 0.25, 0.25, 0.25});  // all-zero layer
  s.add({{0, 0, 8, 0}, {1, 1, 1, 1}});  // the first step leaves the 2-step window
  CHECK(s.window_fill() == 2);
  CHECK(s.window_shares()[0] == std::vector<double>{0, 4.0 / 12, 8.0 / 12, 0});
  CHECK(s.running_shares()[0] == std::vector<double>{0.25, 0.25, 0.5, 0});
  CHECK(s.running_counts()[0] == std::vector<uint64_t>{4, 4, 8, 0});
  CHECK(s.steps() == 3);
  for (const auto& row : s.window_shares()) {
    double sum = 0;
    for (double x : row) sum += x;
    CHECK(sum == Approx(1.0));
  }
}

TEST_CASE("expert load saturates instead of overflowing", "[unit][hub]") {
  ExpertLoadStats s(1, 2, 1);
  const uint64_t big = ~uint64_t{0} - 1;
  s.add({{big, 1}});
  s.add({{big, 1}});
  CHECK(s.running_counts()[0][0] == ~uint64_t{0});
  CHECK(s.window_counts()[0] == std::vector<uint64_t>{big, 1});
  CHECK(s.running_shares()[0][0] == Approx(1.0));
}

TEST_CASE("scheduler: with everyone live, step s goes to TurnSchedule::party_at(s)", "[unit][hub]") {
  for (uint32_t n : {1u, 2u, 3u, 5u}) {
    for (uint32_t spt : {1u, 3u}) {
      TurnScheduler sched(99, spt);
      TurnSchedule ref(99, n, spt);
      std::vector<uint32_t> live;
      for (uint32_t i = 0; i < n; ++i) live.push_back(i);
      int64_t step = 0;
      const int64_t total = 40;
      while (step < total) {
        auto pick = sched.pick(live);
        REQUIRE(pick);
        const ActiveTurn& t = sched.begin(pick->party, step, total, TimePoint{});
        for (uint32_t k = 0; k < t.n_steps; ++k, ++step) {
          INFO("n=" << n << " spt=" << spt << " step=" << step);
          CHECK(t.party == ref.party_at(step));
        }
        sched.finish(true, std::nullopt);
      }
    }
  }
}

TEST_CASE("scheduler: a lost party is skipped, a rejoined one comes back next round", "[unit][hub]") {
  TurnScheduler sched(5, 1);
  const std::vector<uint32_t> all{0, 1, 2};
  auto first = sched.pick(all);
  REQUIRE(first->new_round);
  std::vector<uint32_t> order = sched.order();
  CHECK(order == round_order(5, 0, all));
  // Lose the second party of the round: the third comes next, then round 1 over the two live.
  std::vector<uint32_t> live;
  for (uint32_t i : all) {
    if (i != order[1]) live.push_back(i);
  }
  CHECK(sched.pick(live)->party == order[2]);
  auto next = sched.pick(live);
  CHECK(next->new_round);
  CHECK(sched.round() == 1);
  CHECK(sched.order() == round_order(5, 1, live));
  CHECK(sched.pick(live)->party == sched.order()[1]);
  // Back with everyone: round 2 includes it again.
  sched.pick(all);
  CHECK(sched.order() == round_order(5, 2, all));
  CHECK_FALSE(sched.pick({}));
}

TEST_CASE("scheduler: turn length and the failure streak", "[unit][hub]") {
  TurnScheduler sched(1, 4);
  CHECK(sched.begin(0, 0, 10, TimePoint{}).n_steps == 4);
  CHECK(sched.begin(0, 8, 10, TimePoint{}).n_steps == 2);  // the last turn is shorter
  CHECK(sched.finish(false, 2u) == 1);
  CHECK(sched.finish(false, 2u) == 2);
  CHECK(sched.finish(false, 1u) == 1);  // another suspect breaks the streak
  CHECK(sched.finish(false, 1u) == 2);
  CHECK(sched.finish(true, std::nullopt) == 0);
  CHECK(sched.finish(false, 1u) == 1);
}

TEST_CASE("log limiter: 10 lines per peer per second, then counted", "[unit][hub]") {
  LogLimiter lim(10, 50);
  TimePoint t0 = Clock::now();
  int allowed = 0;
  for (int i = 0; i < 100; ++i) allowed += lim.allow("fuzzer", t0) ? 1 : 0;
  CHECK(allowed == 10);
  CHECK(lim.suppressed_total() == 90);
  CHECK(lim.allow("other", t0));                                     // another peer has its own budget
  CHECK(lim.allow("fuzzer", t0 + std::chrono::milliseconds(1001)));  // a new window
  // The overall budget caps many peers.
  LogLimiter many(10, 5);
  int n = 0;
  for (int i = 0; i < 20; ++i) n += many.allow("p" + std::to_string(i), t0) ? 1 : 0;
  CHECK(n == 5);
  lim.flush(t0 + std::chrono::seconds(5));
  CHECK(peer_label(std::string("\x00\x6b\xff", 3)) == "006bff");
}

TEST_CASE("pcmoe-ctl connects to a wildcard bind on the loopback", "[unit][hub]") {
  CHECK(connect_endpoint("tcp://*:5555") == "tcp://127.0.0.1:5555");
  CHECK(connect_endpoint("tcp://0.0.0.0:5555") == "tcp://127.0.0.1:5555");
  CHECK(connect_endpoint("tcp://10.1.2.3:5555") == "tcp://10.1.2.3:5555");
  CHECK(connect_endpoint("ipc:///tmp/hub.sock") == "ipc:///tmp/hub.sock");
  CHECK_THROWS_AS(connect_endpoint("tcp://127.0.0.1:*"), ConfigError);
  CHECK_THROWS_AS(connect_endpoint("bogus"), ConfigError);
}

TEST_CASE("status rendering: human and JSON", "[unit][hub]") {
  proto::Status s;
  s.run_id = "run-1";
  s.state = "training";
  s.step = 120;
  s.total_steps = 2000;
  s.turn_party = "alice";
  s.pool_step = 100;
  proto::PartyStatus a;
  a.party_id = "alice";
  a.alive = true;
  a.state = "training";
  a.steps_done = 60;
  a.tokens = 122880;
  a.last_loss = 2.5;
  a.tokens_per_s = 12000;
  a.peak_memory_bytes = 512ull << 20;
  a.memory_budget_bytes = 8ull << 30;
  a.bytes_sent = 3ull << 30;
  a.last_seen_ms_ago = 300;
  s.parties = {a};
  s.moe_layers = {1, 3};
  s.placement = {{0, 0}, {0, 0}};
  s.load_running = {{0.25, 0.75}, {0.5, 0.5}};
  s.load_window = {{0.5, 0.5}, {1.0, 0.0}};
  std::string h = format_status(s);
  CHECK_THAT(h, Catch::Contains("run run-1 | state training | step 120/2000 | turn: alice | pool: step 100"));
  CHECK_THAT(h, Catch::Contains("alice") && Catch::Contains("2.5000") && Catch::Contains("512.0") &&
                    Catch::Contains("8192.0") && Catch::Contains("3.0 GiB") && Catch::Contains("0.3 s"));
  CHECK_THAT(h, Catch::Contains("layer  1: 25.0 75.0 | 50.0 50.0"));
  CHECK_THAT(h, Catch::Contains("layer  3: 50.0 50.0 | 100.0  0.0"));
  std::string j = status_json(s);
  CHECK_THAT(j, Catch::StartsWith("{\"run_id\":\"run-1\",\"state\":\"training\",\"step\":120"));
  CHECK_THAT(j, Catch::Contains("\"load_running\":[[0.25,0.75],[0.5,0.5]]"));
  CHECK_THAT(j, Catch::Contains("\"last_eval_loss\":-1"));
  CHECK(ack_json("pause", {false, "already paused"}) ==
        "{\"action\":\"pause\",\"ok\":false,\"message\":\"already paused\"}");
}
