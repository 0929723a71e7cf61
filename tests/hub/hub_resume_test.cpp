// A restarted hub continues its run (hub.resume): hub_state.json read back, HubState::restore,
// the saved pool, and the refusals (another model, a run already at train.steps, a damaged file).
#include <catch2/catch.hpp>

#include "common/error.h"
#include "common/tensor_file.h"
#include "hub/saved_state.h"
#include "hub_test_util.h"
#include "test_util.h"

using namespace pcmoe;
using namespace pcmoe::hub;
using test::HubHarness;
using test::of_type;
using test::the_turn;

namespace {

// Plays turns (with snapshot rounds when training starts and at step 4: snapshot_every 4) until
// `steps` global steps are done; returns the Turn the hub granted next.
proto::Turn play_until(HubHarness& h, int64_t steps) {
  proto::Turn t = the_turn(h.answer_snapshots(h.join_all()));
  while (true) {
    auto out = h.answer_snapshots(h.play(t));
    auto next = of_type<proto::Turn>(out);
    REQUIRE(next.size() == 1);
    t = next[0];
    if (h.hub().step() >= steps) return t;
  }
}

std::string saved_path(const test::TempDir& dir, const HubHarness& h) {
  return dir.write("hub_state.json", const_cast<HubHarness&>(h).store().state);
}

}  // namespace

TEST_CASE("resume: a restarted hub continues step, schedule, load, totals and pool", "[unit][hub]") {
  HubConfig cfg = test::small_hub_config({"a", "b", "c"});
  cfg.hub.snapshot_every = 4;
  cfg.hub.state_every = 2;
  test::TempDir dir;
  HubHarness before(cfg);
  const proto::Turn next = play_until(before, 6);
  // Written when training starts, after the first snapshot (step 0), then (state_every 2) at steps
  // 2, 4 (and after the snapshot at 4) and 6, between turns.
  CHECK(before.store().state_writes == 6);
  CHECK_THAT(before.store().state, Catch::Contains("\"step\":6"));
  REQUIRE(before.store().pool.has_value());

  auto saved = read_saved_hub_state(saved_path(dir, before));
  REQUIRE(saved.has_value());
  CHECK(saved->step == 6);
  CHECK(saved->run_id == "run-test");
  CHECK(saved->pool_step == 4);
  REQUIRE(saved->parties.size() == 3);

  HubHarness after(cfg);
  after.hub().restore(*saved, std::make_shared<const TensorFile>(*before.store().pool));
  CHECK(after.hub().step() == 6);
  CHECK(after.hub().run_id() == "run-test");
  CHECK(after.hub().scheduler().round() == saved->round);
  CHECK(after.hub().scheduler().turns_issued() == before.hub().scheduler().turns_issued() - 1);  // `next`
  CHECK(after.hub().load().running_counts() == before.hub().load().running_counts());
  CHECK(after.hub().load().steps() == 6);
  CHECK(after.hub().pool().step() == 4);
  for (uint32_t i = 0; i < 3; ++i) {
    CHECK(after.hub().registry().at(i).totals.steps_done == before.hub().registry().at(i).totals.steps_done);
    CHECK(after.hub().registry().at(i).totals.tokens == before.hub().registry().at(i).totals.tokens);
  }
  // The parties join again; the first turn is the one the uninterrupted hub granted.
  auto resumed = the_turn(after.join_all());
  CHECK(resumed.step_begin == next.step_begin);
  CHECK(resumed.turn_id == next.turn_id);
  CHECK(after.hub().scheduler().active()->party == before.hub().scheduler().active()->party);
  CHECK(after.hub().scheduler().round() == before.hub().scheduler().round());
  CHECK(after.hub().scheduler().order() == before.hub().scheduler().order());
  // The Welcome carries the resumed step; the status the restored pool.
  auto w = of_type<proto::Welcome>(after.join("a"));
  REQUIRE(w.size() == 1);
  CHECK(w[0].step == 6);
  CHECK(after.hub().status(after.now()).pool_step == 4);
}

TEST_CASE("resume: refusals and what is dropped", "[unit][hub]") {
  HubConfig cfg = test::small_hub_config({"a", "b", "c"});
  cfg.hub.snapshot_every = 4;
  test::TempDir dir;
  HubHarness before(cfg);
  play_until(before, 5);
  before.hub().save_state(before.now());
  const std::string path = saved_path(dir, before);

  SECTION("another model") {
    HubConfig other = cfg;
    other.model.d_ff = 32;
    HubHarness h(other);
    auto saved = read_saved_hub_state(path);
    CHECK_THROWS_WITH(h.hub().restore(*saved, nullptr), Catch::Contains(path) &&
                                                            Catch::Contains("model hash") &&
                                                            Catch::Contains("hub.resume=false"));
  }
  SECTION("another train.steps is another preset") {
    HubConfig longer = cfg;
    longer.train.steps = 24;
    HubHarness h(longer);
    CHECK_THROWS_WITH(h.hub().restore(*read_saved_hub_state(path), nullptr),
                      Catch::Contains("train.steps was 12, now 24"));
  }
  SECTION("the saved run is complete") {
    HubHarness h(cfg);
    auto saved = read_saved_hub_state(path);
    saved->step = 12;
    CHECK_THROWS_AS(h.hub().restore(*saved, nullptr), ConfigError);
    CHECK_THROWS_WITH(
        h.hub().restore(*saved, nullptr),
        Catch::Contains("is complete (step 12 of train.steps 12)") && Catch::Contains("new hub.out_dir"));
  }
  SECTION("a pool that does not fit is dropped, the rest is restored") {
    TensorFile pool = *before.store().pool;
    pool.tensors.pop_back();
    HubHarness h(cfg);
    h.hub().restore(*read_saved_hub_state(path), std::make_shared<const TensorFile>(pool));
    CHECK(h.hub().pool().empty());
    CHECK(h.hub().step() == 5);
  }
  SECTION("another seed: a new round starts") {
    HubConfig reseeded = cfg;
    reseeded.hub.seed = 7;
    HubHarness h(reseeded);
    h.hub().restore(*read_saved_hub_state(path), nullptr);
    const uint64_t round = h.hub().scheduler().round();
    the_turn(h.answer_snapshots(h.join_all()));  // no pool restored: a first snapshot round
    CHECK(h.hub().scheduler().round() == round + 1);
    CHECK(h.hub().scheduler().position() == 1);
  }
  SECTION("damaged files name the file and the field") {
    CHECK_FALSE(read_saved_hub_state(dir.path() + "/absent.json").has_value());
    const std::string truncated = dir.write("truncated.json", before.store().state.substr(0, 40));
    CHECK_THROWS_WITH(read_saved_hub_state(truncated),
                      Catch::Contains(truncated) && Catch::Contains("hub.resume=false"));
    std::string no_round = before.store().state;
    no_round.replace(no_round.find("\"round\":"), 8, "\"rnd\":");
    CHECK_THROWS_WITH(read_saved_hub_state(dir.write("no_round.json", no_round)),
                      Catch::Contains("field 'round' is missing"));
    std::string bad_type = before.store().state;
    bad_type.replace(bad_type.find("\"step\":5"), 8, "\"step\":\"five\"");
    CHECK_THROWS_WITH(read_saved_hub_state(dir.write("bad_type.json", bad_type)),
                      Catch::Contains("field 'step' has the wrong type"));
    CHECK_THROWS_WITH(read_saved_hub_state(dir.write("list.json", "[1, 2]")),
                      Catch::Contains("is not a JSON object"));
  }
}
