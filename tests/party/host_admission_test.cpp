// The expert host's admission rule (issue 14): with the hub's turn notice, a train request is
// admitted only from a holder of the turn, for a step of its turn; any other is answered `busy`
// and opens nothing, so it can neither step the host's experts nor keep the holder out.
#include <catch2/catch.hpp>

#include "party_test_util.h"
#include "proto/wire_tensor.h"

using namespace pcmoe;

namespace {

ModelConfig small_model() {
  ModelConfig m;
  m.seq_len = 16;
  m.d_model = 16;
  m.n_layers = 1;
  m.n_heads = 2;
  m.d_ff = 12;
  m.n_experts = 4;
  m.top_k = 2;
  return m;
}

// A train forward of 3 rows to expert 1 of layer 0 (hosted by index 1 of 2, round robin).
proto::ExpertForward forward(uint64_t rid, const std::string& requester, int64_t step) {
  proto::ExpertForward f;
  f.request_id = rid;
  f.requester = requester;
  f.step = step;
  f.layer = 0;
  f.mode = proto::ExpertMode::train;
  std::vector<int16_t> ids(3, 1);
  f.expert_ids = proto::make_tensor(DType::i16, {3}, ids.data(), ids.size() * sizeof(int16_t));
  f.rows = proto::make_f32({3, 16}, std::vector<float>(3 * 16, 0.5f));
  return f;
}

uint16_t error_code(const proto::Message& m) {
  const auto* e = std::get_if<proto::ErrorMsg>(&m);
  return e == nullptr ? 0 : e->code;
}

}  // namespace

TEST_CASE("expert host: only the turn's holder trains, for the steps of its turn", "[unit][party][host]") {
  const ModelConfig m = small_model();
  TrainConfig t;
  test::HostParty b(m, t, party::Placement::round_robin(m, 3, 1), 1, "b");
  b.host->set_known_parties({"a", "b", "c"});
  b.host->set_party_indices({{"a", 0}, {"b", 1}, {"c", 2}});
  std::optional<proto::TurnNotice> notice;
  b.host->set_turn_probe([&] { return notice; });
  const auto busy = static_cast<uint16_t>(proto::ErrorCode::busy);

  SECTION("no notice yet, or no turn in progress: busy") {
    CHECK(error_code(b.host->handle("a", forward(1, "a", 5))) == busy);
    notice = proto::TurnNotice{7, 2, {}, 5, 0};
    CHECK(error_code(b.host->handle("a", forward(2, "a", 5))) == busy);
    CHECK(b.host->stats().out_of_turn == 2);
  }
  SECTION("the holder is admitted for its steps; another member and other steps are not") {
    notice = proto::TurnNotice{7, 2, {2}, 5, 2};  // c holds steps 5 and 6
    CHECK(error_code(b.host->handle("a", forward(1, "a", 5))) == busy);
    CHECK(error_code(b.host->handle("c", forward(2, "c", 7))) == busy);
    CHECK(error_code(b.host->handle("c", forward(3, "c", 4))) == busy);
    CHECK(std::holds_alternative<proto::ExpertForwardReply>(b.host->handle("c", forward(4, "c", 6))));
    // a's step_end finds no open step of a: nothing is applied.
    auto ack = b.host->handle("a", proto::StepEnd{"a", 5, 1.0});
    const auto* a = std::get_if<proto::StepEndAck>(&ack);
    CHECK((a == nullptr || a->experts_stepped == 0));
    CHECK(b.host->stats().steps_applied == 0);
  }
  SECTION("an open step of a party whose turn is over gives way to the next holder at once") {
    notice = proto::TurnNotice{7, 2, {0}, 5, 1};
    REQUIRE(std::holds_alternative<proto::ExpertForwardReply>(b.host->handle("a", forward(1, "a", 5))));
    // a never ends its step; the hub's next turn goes to c.
    notice = proto::TurnNotice{8, 2, {2}, 6, 1};
    CHECK(std::holds_alternative<proto::ExpertForwardReply>(b.host->handle("c", forward(2, "c", 6))));
  }
  SECTION("without the turn rule (stale_ms) the same open step keeps the next requester out") {
    b.host->set_turn_probe(nullptr);
    REQUIRE(std::holds_alternative<proto::ExpertForwardReply>(b.host->handle("a", forward(1, "a", 5))));
    CHECK(error_code(b.host->handle("c", forward(2, "c", 6))) == busy);
  }
  SECTION("concurrent rounds: every participant of the round's notice, for the round's step") {
    b.host->set_concurrent(true);
    b.host->open_round(9);
    notice = proto::TurnNotice{12, 3, {0, 1}, 9, 1};  // a and b take part, c does not
    CHECK(std::holds_alternative<proto::ExpertForwardReply>(b.host->handle("a", forward(1, "a", 9))));
    CHECK(error_code(b.host->handle("c", forward(2, "c", 9))) == busy);
  }
}
