// The fault-and-attack suite, part 3 (tags [adversary][host]): the expert hosts. Under CURVE a
// stranger cannot reach an expert service at all; a member outside its turn can neither step
// another host's experts nor hold them (the host admits train requests only from the party the
// hub's turn notice names, for the steps of its turn: lib/party/expert_host.*, PROTOCOL.md 9.4).
#include <catch2/catch.hpp>

#include "federation.h"
#include "net/context.h"
#include "net/rpc.h"
#include "proto/wire_tensor.h"
#include "test_util.h"

using namespace pcmoe;

namespace {

constexpr int kDModel = 128;  // configs/models/tiny.yaml

// A DEALER to party `host`'s expert service with `keys` (CURVE).
std::unique_ptr<net::Client> to_host(test::Federation& fed, const std::string& host,
                                     const net::CurveKeyPair& keys) {
  auto s = fed.status();
  REQUIRE(s);
  net::ClientOptions o;
  o.endpoint = test::find_party(*s, host)->endpoint;
  o.curve = keys;
  o.server_public_key = net::read_public_key_file(fed.public_key_file("party-" + host));
  return std::make_unique<net::Client>(net::default_context(), o);
}

// A train-mode forward of 4 rows to b's expert 1 (b hosts e mod 3 == 1) of MoE layer 0.
proto::ExpertForward forward(uint64_t rid, const std::string& requester, int64_t step, float value) {
  proto::ExpertForward f;
  f.request_id = rid;
  f.requester = requester;
  f.step = step;
  f.layer = 0;
  f.mode = proto::ExpertMode::train;
  std::vector<int16_t> ids(4, 1);
  f.expert_ids = proto::make_tensor(DType::i16, {4}, ids.data(), ids.size() * sizeof(int16_t));
  f.rows = proto::make_f32({4, kDModel}, std::vector<float>(4 * kDModel, value));
  return f;
}

std::optional<proto::Message> call(net::Client& c, const proto::Message& m) {
  if (!net::send_message(c, m, 2000)) return std::nullopt;
  return net::recv_message(c, 3000, proto::Limits{});
}

test::FederationOptions curve_options(int steps) {
  test::FederationOptions o = test::fault_options(steps, 0, 200);
  o.curve = true;
  return o;
}

}  // namespace

TEST_CASE("adversary host: a stranger's key cannot reach an expert service (CURVE)", "[adversary][host]") {
  PCMOE_SKIP_WITHOUT_DEMO_CORPORA();
  test::TempDir dir;
  test::Federation fed(dir.path(), curve_options(40));
  FED_REQUIRE(fed, fed.start_hub());
  fed.start_parties();
  FED_REQUIRE(fed, fed.wait_status([](const proto::Status& s) { return s.step >= 3; }, 60000));
  auto stranger = to_host(fed, "b", net::generate_keypair());
  CHECK_FALSE(call(*stranger, forward(1, "a", 3, 100.0f)).has_value());  // no handshake, no answer
  fed.require_clean_finish(40);
  CHECK_FALSE(test::log_events(fed.party_log("b"), "net.auth_denied").empty());
}

TEST_CASE("adversary host: a party outside its turn cannot step another host's experts",
          "[adversary][host]") {
  PCMOE_SKIP_WITHOUT_DEMO_CORPORA();
  test::TempDir dir;
  test::Federation fed(dir.path(), curve_options(60));
  FED_REQUIRE(fed, fed.start_hub());
  fed.start_parties();
  // Party a's own key pair (a member, authenticated as a), while c holds the turn.
  auto during =
      fed.wait_status([](const proto::Status& s) { return s.step >= 5 && s.turn_party == "c"; }, 60000);
  FED_REQUIRE(fed, during.has_value());
  auto as_a = to_host(fed, "b", net::read_key_file(fed.key_file("party-a")));
  const int64_t step = during->step;
  // Between c's steps the host holds no open step: a retries its `busy` forwards until one is taken.
  std::optional<proto::Message> fwd;
  int busy = 0;
  for (int i = 0; i < 250; ++i) {
    fwd = call(*as_a, forward(900001, "a", step, 50.0f));
    const auto* e = fwd ? std::get_if<proto::ErrorMsg>(&*fwd) : nullptr;
    if (e == nullptr || e->code != static_cast<uint16_t>(proto::ErrorCode::busy)) break;
    ++busy;
  }
  REQUIRE(fwd.has_value());
  bool applied = false;
  if (std::holds_alternative<proto::ExpertForwardReply>(*fwd)) {
    proto::ExpertBackward bwd;
    bwd.request_id = 900001;
    bwd.grad_outputs = proto::make_f32({4, kDModel}, std::vector<float>(4 * kDModel, 1000.0f));
    call(*as_a, bwd);
    auto ack = call(*as_a, proto::StepEnd{"a", step, 1.0});
    const auto* a = ack ? std::get_if<proto::StepEndAck>(&*ack) : nullptr;
    applied = a != nullptr && a->experts_stepped > 0;
  }
  CHECK_FALSE(applied);  // the host takes requests only from the turn holder for that step
  fed.require_clean_finish(60);
  std::printf("reliability: a member's out-of-turn train request to b: %s (answered busy %d times)\n",
              applied ? "APPLIED" : "nothing applied", busy);
}

TEST_CASE("adversary host: a requester holding a host open is bounded; the honest host is not expelled",
          "[adversary][host]") {
  PCMOE_SKIP_WITHOUT_DEMO_CORPORA();
  constexpr int kSteps = 400;
  test::TempDir dir;
  test::Federation fed(dir.path(), curve_options(kSteps));
  FED_REQUIRE(fed, fed.start_hub());
  fed.start_parties();
  auto start = fed.wait_status([](const proto::Status& s) { return s.step >= 5; }, 60000);
  FED_REQUIRE(fed, start.has_value());
  // Party a keeps one step of its own open on b's host, touching it every second for 12 s.
  auto as_a = to_host(fed, "b", net::read_key_file(fed.key_file("party-a")));
  int64_t progress = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (uint64_t i = 0; std::chrono::steady_clock::now() - t0 < std::chrono::seconds(12); ++i) {
    call(*as_a, forward(800000 + i, "a", 1000000, 1.0f));
    auto s = fed.wait_status([&](const proto::Status& st) { return st.step >= kSteps; }, 1000);
    progress = (s ? s->step : fed.step()) - start->step;
    if (s) break;
  }
  // The federation kept training at a useful pace (at least one step a second), and nobody blamed b.
  CHECK(progress >= 12);
  CHECK(test::log_events(fed.hub_log(), "hub.party_lost").empty());
  std::printf(
      "reliability: a member holding b's host open for 12 s: %lld global steps meanwhile, %zu parties lost\n",
      static_cast<long long>(progress), test::log_events(fed.hub_log(), "hub.party_lost").size());
}
