// The party's memory plan: the footprint model's terms scale as they should with the placement,
// a memory limit below the minimum footprint is refused with the breakdown, and a limit between
// the minimum and the full footprint makes the host recompute instead of failing.
#include <catch2/catch.hpp>

#include "model/footprint.h"
#include "party/party_test_util.h"
#include "party/trainer.h"
#include "party/wire.h"
#include "test_util.h"

using namespace pcmoe;

TEST_CASE("footprint: experts shrink with the number of parties; the stash bounds the host",
          "[unit][party]") {
  ModelConfig m;
  m.d_model = 256;
  m.n_experts = 64;
  m.d_ff = 1024;
  TrainConfig t;
  t.batch_size = 8;
  t.dtype = "bf16";
  model::FootprintInput central;
  central.backbone_params = 3'000'000;
  central.hosted_expert_params = 64LL * 4 * 3 * 256 * 1024;
  central.hosted_experts_per_layer = 64;
  central.bf16 = true;
  auto fc = model::estimate_footprint(m, t, central);
  model::FootprintInput party = central;
  party.n_parties = 4;
  party.hosted_expert_params /= 4;
  party.hosted_experts_per_layer = 16;
  auto fp = model::estimate_footprint(m, t, party);
  CHECK(fp.expert_state * 4 == fc.expert_state);
  CHECK(fp.backbone_state == fc.backbone_state);
  CHECK(fp.activations == fc.activations);  // own batch, same model
  CHECK(fc.remote_stash == 0);              // one process: nothing stashed for others
  CHECK(fp.remote_stash > fp.remote_stash_min);
  CHECK(fp.total() < fc.total());
  CHECK(fp.minimum() <= fp.total());
  CHECK(fp.table().find("total") != std::string::npos);
}

TEST_CASE("a memory limit below the minimum footprint is refused with the breakdown", "[unit][party]") {
  test::TempDir dir;
  ModelConfig m;
  m.seq_len = 32;
  m.d_model = 32;
  m.n_layers = 2;
  m.n_heads = 2;
  m.d_ff = 32;
  m.n_experts = 4;
  PartyConfig cfg = test::party_config_with_corpus(dir, m);
  test::LoopbackLink link("a", {});
  party::PartyTrainer trainer(cfg, 7, party::Placement::round_robin(cfg.model, 2, 0), link);
  const auto f = trainer.footprint();
  CHECK_THROWS_WITH(trainer.apply_memory_limit(f.minimum() / 2),
                    Catch::Contains("party.memory_limit_mb") && Catch::Contains("minimum footprint") &&
                        Catch::Contains("experts  weights+AdamW"));
  CHECK_NOTHROW(trainer.apply_memory_limit(f.minimum() + (f.total() - f.minimum()) / 2));
  CHECK_NOTHROW(trainer.apply_memory_limit(0));  // no limit
}

TEST_CASE("a host short of memory recomputes in backward and answers busy beyond that", "[unit][party]") {
  ModelConfig m;
  m.d_model = 16;
  m.n_layers = 1;
  m.n_heads = 2;
  m.d_ff = 16;
  m.n_experts = 2;
  m.top_k = 1;
  TrainConfig t;
  test::HostParty host(m, t, party::Placement::round_robin(m, 1, 0), 0, "h");
  host.host->set_known_parties({"r"});
  auto fwd = [&](uint64_t id, int64_t rows) {
    proto::ExpertForward f;
    f.request_id = id;
    f.requester = "r";
    f.step = 0;
    f.layer = 0;
    f.rows = party::to_wire(torch::randn({rows, m.d_model}), DType::f32);
    f.expert_ids = party::ids_to_wire(torch::zeros({rows}, torch::kLong), m.n_experts);
    return host.host->handle("r", f);
  };
  // Room for the input rows of 100 rows (4 * d bytes each) but not their full saved tensors.
  host.host->set_max_stash_bytes(100 * 4 * 16 + 10);
  auto a = fwd(1, 100);
  REQUIRE(std::holds_alternative<proto::ExpertForwardReply>(a));
  CHECK(host.host->stats().recomputed == 1);
  auto b = fwd(2, 100);  // no room left at all
  REQUIRE(std::holds_alternative<proto::ErrorMsg>(b));
  CHECK(std::get<proto::ErrorMsg>(b).code == static_cast<uint16_t>(proto::ErrorCode::busy));
  // Backward of the recomputed request equals the gradient of a direct computation.
  proto::ExpertBackward bw;
  bw.request_id = 1;
  bw.grad_outputs = party::to_wire(torch::ones({100, m.d_model}), DType::f32);
  auto g = host.host->handle("r", bw);
  REQUIRE(std::holds_alternative<proto::ExpertBackwardReply>(g));
  CHECK(std::get<proto::ExpertBackwardReply>(g).grad_sq_norm > 0);
  CHECK(host.host->stats().stash_bytes == 0);
}
