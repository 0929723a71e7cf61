// What the hub tells observers about each party's speed: HubState::view (the HTTP status page's
// source) carries per-party step times and joins, hub.stats logs each party's recent step time and
// the slowest live party, and hub_state.json records the placement (who hosts which expert).
#include <catch2/catch.hpp>

#include <cmath>
#include <string>
#include <vector>

#include "common/fs.h"
#include "common/log.h"
#include "hub/loss_history.h"
#include "hub/step_times.h"
#include "hub_test_util.h"
#include "test_util.h"

using namespace pcmoe;
using namespace pcmoe::hub;
using test::HubHarness;
using test::of_type;
using test::the_turn;

namespace {

// Plays `n` turns, each holder reporting step_ms = 100 for party a and 300 for party b.
void play_turns(HubHarness& h, proto::Turn t, int n) {
  for (int i = 0; i < n; ++i) {
    const auto& holder = h.hub().registry().at(h.hub().scheduler().active()->party);
    proto::StepReport r = test::report_for(h.cfg(), t.turn_id, t.step_begin);
    r.step_ms = holder.id == "a" ? 100 : 300;
    h.send(holder.peer, r);
    auto out = h.send(holder.peer, proto::TurnDone{t.turn_id, 1, true, "", ""});
    if (i + 1 < n) t = the_turn(out);
  }
}

}  // namespace

TEST_CASE("step times: last and mean over the recent window", "[unit][hub]") {
  StepTimes s;
  CHECK(s.empty());
  CHECK(s.last_ms() == -1);
  CHECK(s.mean_ms() == -1);
  s.add(10);
  s.add(30);
  s.add(std::nan(""));  // ignored
  s.add(-5);            // ignored
  CHECK(s.count() == 2);
  CHECK(s.last_ms() == 30);
  CHECK(s.mean_ms() == Approx(20));
  for (size_t i = 0; i < StepTimes::kWindow; ++i) s.add(50);
  CHECK(s.count() == StepTimes::kWindow);
  CHECK(s.mean_ms() == Approx(50));  // the old ones left the window
}

TEST_CASE("loss history: recent training and held-out losses with their global steps", "[unit][hub]") {
  LossHistory h;
  CHECK(h.train().empty());
  h.add(1, 5.0, -1);
  h.add(2, 4.5, 4.75);
  h.add(3, std::nan(""), -1);  // kept out
  CHECK(h.train() == std::vector<std::vector<double>>{{1, 5.0}, {2, 4.5}});
  CHECK(h.eval() == std::vector<std::vector<double>>{{2, 4.75}});
  for (int i = 0; i < 300; ++i) h.add(10 + i, 3.0, -1);
  CHECK(h.train().size() == LossHistory::kSteps);
  CHECK(h.train().front()[0] == 10 + 300 - LossHistory::kSteps);
}

TEST_CASE("view: per-party step times, joins and the hub's counters", "[unit][hub]") {
  HubConfig cfg = test::small_hub_config({"a", "b"});
  HubHarness h(cfg);
  play_turns(h, the_turn(h.join_all()), 6);
  const HubView v = h.hub().view(h.now());
  REQUIRE(v.timing.size() == 2);
  CHECK(v.status.parties.size() == 2);
  CHECK(v.status.step == 6);
  CHECK(!v.status.load_running.empty());
  CHECK(v.timing[0].step_ms_last == Approx(100));
  CHECK(v.timing[0].step_ms_mean == Approx(100));
  CHECK(v.timing[1].step_ms_mean == Approx(300));
  CHECK(v.timing[0].joins == 1);
  CHECK(v.timing[0].recent_loss.size() == 3);  // a took steps 0, 2, 4 (reported as 1, 3, 5)
  CHECK(v.timing[0].recent_loss.back()[1] == Approx(v.status.parties[0].last_loss));
  CHECK(v.msgs_in > 0);
  CHECK(v.model_hash == h.hub().model_hash());
  CHECK(!v.published_at.empty());
}

TEST_CASE("hub.stats names each party's recent step time and the slowest live party", "[unit][hub]") {
  test::TempDir dir;
  const std::string log_path = dir.path() + "/hub.log";
  log::init({"hub", log::Level::info, log_path});
  {
    HubConfig cfg = test::small_hub_config({"a", "b"});
    HubOptions o;
    o.timeouts.stats_interval = Millis(1000);
    HubHarness h(cfg, o);
    play_turns(h, the_turn(h.join_all()), 4);
    h.advance(1500);
    h.heartbeat_all();
    h.tick();
  }
  log::init({"test", log::Level::error, "/dev/stderr"});
  std::vector<std::string> stats;
  const std::string text = fs::read_file(log_path);
  for (size_t b = 0, e; b < text.size(); b = e + 1) {
    e = text.find('\n', b);
    if (e == std::string::npos) e = text.size();
    if (text.substr(b, e - b).find("\"hub.stats\"") != std::string::npos)
      stats.push_back(text.substr(b, e - b));
  }
  REQUIRE(stats.size() == 1);
  CHECK_THAT(stats[0], Catch::Contains("\"step_ms_mean\":{\"a\":100.0,\"b\":300.0}") &&
                           Catch::Contains("\"step_ms_last\":{\"a\":100.0,\"b\":300.0}") &&
                           Catch::Contains("\"slowest\":\"b\""));
}

TEST_CASE("hub_state.json records the placement and each party's recent step time", "[unit][hub]") {
  HubConfig cfg = test::small_hub_config({"a", "b"});
  HubHarness h(cfg);
  play_turns(h, the_turn(h.join_all()), 2);
  const std::string json = h.hub().state_json(h.now());
  CHECK_THAT(json, Catch::Contains("\"moe_layers\":[0,1]") &&
                       Catch::Contains("\"placement\":[[0,1,0,1],[0,1,0,1]]") &&
                       Catch::Contains("\"step_ms_mean\":100.0"));
}
