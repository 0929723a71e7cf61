// privacy.hub_report minimal (lib/party/trainer.h withhold_from_hub): a step report keeps from the
// hub what would let it match a party to a corpus (losses, routing counts, mean gates), and keeps
// what operating the federation needs (step, turn, tokens, timings, bytes, memory).
#include <catch2/catch.hpp>

#include "party/trainer.h"

using namespace pcmoe;

TEST_CASE("hub_report minimal: losses -1, counts and gates zero, the rest kept", "[unit][privacy]") {
  proto::StepReport r;
  r.turn_id = 7;
  r.step = 41;
  r.loss = 2.5;
  r.aux_loss = 0.01;
  r.eval_loss = 2.7;
  r.tokens = 2048;
  r.step_ms = 310;
  r.bytes_sent = 1000;
  r.expert_counts = {{3, 0, 9}, {1, 2, 3}};
  r.gate_mean = {{0.1, 0.2, 0.7}, {0.3, 0.3, 0.4}};
  party::withhold_from_hub(r);
  CHECK(r.loss == -1);
  CHECK(r.aux_loss == -1);
  CHECK(r.eval_loss == -1);
  CHECK(r.expert_counts == std::vector<std::vector<uint64_t>>{{0, 0, 0}, {0, 0, 0}});  // shapes kept
  CHECK(r.gate_mean == std::vector<std::vector<double>>{{0, 0, 0}, {0, 0, 0}});
  CHECK(r.turn_id == 7);
  CHECK(r.step == 41);
  CHECK(r.tokens == 2048);
  CHECK(r.step_ms == 310);
  CHECK(r.bytes_sent == 1000);
}
