// Which experts are how old: a pool records each host's step; a host lost before it answered a
// round keeps the experts (and the older step) of the previous pool, so the pool stays complete
// and every export can say how old each host's experts are. Socket-free (HubHarness).
#include <catch2/catch.hpp>

#include "hub_test_util.h"

using namespace pcmoe;
using test::HubHarness;
using test::of_type;
using test::the_turn;

TEST_CASE("pool: a lost host's experts are carried with their older step", "[unit][hub]") {
  HubConfig cfg = test::small_hub_config({"a", "b", "c"});
  cfg.hub.snapshot_every = 2;
  HubHarness h(cfg);
  auto out = h.answer_snapshots(h.join_all());  // the first pool, when training starts
  REQUIRE(h.hub().pool().step() == 0);
  CHECK(h.hub().pool().party_steps() == std::vector<int64_t>{0, 0, 0});
  // Two steps, then the periodic round: c is lost before it answers.
  out = h.play(the_turn(out));
  out = h.play(the_turn(out));
  auto reqs = of_type<proto::SnapshotRequest>(out);
  REQUIRE(reqs.size() == 3);
  for (uint32_t i = 0; i < 2; ++i) {
    h.send(HubHarness::peer(h.hub().registry().at(i).id), test::snapshot_for(cfg, i, reqs[0].snapshot_id, 2));
  }
  h.advance(cfg.hub.party_timeout_ms + 1);
  h.send(HubHarness::peer("a"), proto::Heartbeat{1, 0, "serving"});
  h.send(HubHarness::peer("b"), proto::Heartbeat{1, 0, "serving"});
  h.tick();  // c is lost: the round completes without it
  REQUIRE_FALSE(h.hub().registry().at(2).alive);
  CHECK(h.hub().pool().step() == 0);  // the oldest experts in it
  CHECK(h.hub().pool().party_steps() == std::vector<int64_t>{2, 2, 0});
  const proto::Pool p = h.hub().pool().message();
  CHECK(p.party_steps == std::vector<uint64_t>{2, 2, 0});
  CHECK(h.store().pool->meta.at("party_steps") == "2,2,0");
  // A restarted hub reads them back.
  hub::ExpertPool again(h.hub().layout());
  REQUIRE(again.restore(std::make_shared<const TensorFile>(*h.store().pool)).empty());
  CHECK(again.party_steps() == std::vector<int64_t>{2, 2, 0});
}
