// A party's expert service (ExpertServer + ExpertHost, as pcmoe-party runs them: CURVE on, the
// directory's keys, the model's decode limits) attacked over a real socket on 127.0.0.1:
//   - before the host is installed, a request is answered `busy` with its request id;
//   - semantically bad but well-formed requests each get the right ErrorMsg code and leave the
//     host usable (wrong d_model, experts it does not host, a backward for an unknown request, a
//     step_end for a step never opened, NaN rows, a requester field that differs from the
//     authenticated CURVE identity, an eval forward and a train forward while another party
//     holds an open train step);
//   - 100,000 random and mutated frame sets from one persistent DEALER (the mutations of
//     tests/proto/fuzz_test.cpp and tests/hub/hub_fuzz_test.cpp applied to valid encodings of
//     the expert messages), after which the host still computes exactly ExpertShard::run and
//     completes a train step. Deterministic (pcmoe::Rng).
// The host is party "b" of three ("a", "b", "c"); the test speaks as "a" (and "c").
#include <catch2/catch.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>

#include "common/hash.h"
#include "fuzz_util.h"
#include "net/context.h"
#include "net/curve.h"
#include "net/rpc.h"
#include "party/expert_server.h"
#include "party/party_test_util.h"
#include "party/wire.h"
#include "proto/codec.h"

using namespace pcmoe;
using proto::ErrorCode;
using test::Frames;

namespace {

constexpr int kWaitMs = 10000;

ModelConfig small_model() {
  ModelConfig m;
  m.seq_len = 16;
  m.d_model = 16;
  m.n_layers = 2;
  m.n_heads = 2;
  m.d_ff = 24;
  m.d_ff_dense = 32;
  m.n_experts = 6;  // party b (index 1 of 3) hosts experts 1 and 4 of each layer
  m.top_k = 2;
  return m;
}

// Party b's expert service with CURVE: known parties a, b, c.
struct Service {
  ModelConfig m = small_model();
  TrainConfig t;
  std::vector<net::CurveKeyPair> keys;  // a, b, c
  std::unique_ptr<test::HostParty> party;
  proto::Limits limits;
  std::unique_ptr<party::ExpertServer> server;

  explicit Service(bool install) {
    t.expert_seed = 5;
    t.warmup_steps = 0;
    for (int i = 0; i < 3; ++i) keys.push_back(net::generate_keypair());
    party = std::make_unique<test::HostParty>(m, t, party::Placement::round_robin(m, 3, 1), 1, "b");
    party->host->set_known_parties({"a", "b", "c"});
    limits.d_model = m.d_model;
    limits.max_rows = 4 * m.seq_len * m.top_k;  // as the daemon: batch * seq_len * top_k
    net::ServerOptions so;
    so.endpoint = "tcp://127.0.0.1:*";
    so.curve = keys[1];
    for (auto& k : keys) so.allowed_client_keys.push_back(k.public_key);
    so.max_message_bytes = limits.max_rows * m.d_model * 4 + (1 << 20);
    server = std::make_unique<party::ExpertServer>(net::default_context(), so, limits);
    server->set_parties({{keys[0].public_key, "a"}, {keys[1].public_key, "b"}, {keys[2].public_key, "c"}});
    if (install) server->install(party->host.get());
    server->start();
  }
  ~Service() { server->stop(); }

  // A DEALER speaking as party `who` (0 = a, 2 = c).
  std::unique_ptr<net::Client> client(int who) const {
    net::ClientOptions o;
    o.endpoint = server->endpoint();
    o.curve = keys[static_cast<size_t>(who)];
    o.server_public_key = keys[1].public_key;
    return std::make_unique<net::Client>(net::default_context(), o);
  }

  // What the host's experts compute for these rows now (no gradient, under the shard lock).
  torch::Tensor expected(int layer, const torch::Tensor& x, const std::vector<int64_t>& ids) {
    torch::NoGradGuard no_grad;
    std::shared_lock<std::shared_mutex> read(party->mu);
    return party->shard->run(layer, x, torch::tensor(ids, torch::kLong));
  }
};

proto::ExpertForward forward(uint64_t rid, const std::string& requester, int64_t step, uint32_t layer,
                             proto::ExpertMode mode, const std::vector<int64_t>& ids,
                             const torch::Tensor& rows, DType dtype = DType::f32) {
  proto::ExpertForward f;
  f.request_id = rid;
  f.requester = requester;
  f.step = step;
  f.layer = layer;
  f.mode = mode;
  f.expert_ids = party::ids_to_wire(torch::tensor(ids, torch::kLong), 6);
  f.rows = party::to_wire(rows, dtype);
  return f;
}

proto::ExpertBackward backward(uint64_t rid, const torch::Tensor& grad) {
  proto::ExpertBackward b;
  b.request_id = rid;
  b.grad_outputs = party::to_wire(grad, DType::f32);
  return b;
}

proto::StepEnd step_end(const std::string& requester, int64_t step, double clip_scale) {
  proto::StepEnd se;
  se.requester = requester;
  se.step = step;
  se.clip_scale = clip_scale;
  return se;
}

// Sends `m` and returns the reply (the test fails if none comes).
proto::Message call(net::Client& c, const proto::Message& m, const proto::Limits& limits) {
  REQUIRE(net::send_message(c, m, kWaitMs));
  auto reply = net::recv_message(c, kWaitMs, limits);
  REQUIRE(reply.has_value());
  return *reply;
}

proto::ErrorMsg expect_error(const proto::Message& reply, ErrorCode code) {
  const auto* e = std::get_if<proto::ErrorMsg>(&reply);
  INFO("reply: " << proto::msg_type_name(proto::type_of(reply)) << (e ? " " + e->reason : std::string()));
  REQUIRE(e != nullptr);
  CHECK(proto::error_code_name(static_cast<ErrorCode>(e->code)) == proto::error_code_name(code));
  return *e;
}

double rel_err(const torch::Tensor& a, const torch::Tensor& b) {
  const double d = (a.to(torch::kFloat64) - b.to(torch::kFloat64)).norm().item<double>();
  return d / std::max(b.to(torch::kFloat64).norm().item<double>(), 1e-30);
}

// An eval forward of fresh rows from `c`: the host must answer exactly what its experts compute.
void check_host_computes(Service& s, net::Client& c, uint64_t rid) {
  auto x = torch::randn({7, s.m.d_model});
  std::vector<int64_t> ids = {1, 4, 4, 1, 1, 4, 1};
  auto reply = call(c, forward(rid, "a", 1000, 1, proto::ExpertMode::eval, ids, x), s.limits);
  const auto* r = std::get_if<proto::ExpertForwardReply>(&reply);
  if (const auto* e = std::get_if<proto::ErrorMsg>(&reply)) FAIL("eval forward refused: " << e->reason);
  REQUIRE(r != nullptr);
  CHECK(r->request_id == rid);
  auto y = party::from_wire(r->outputs, torch::kCPU, torch::kFloat32);
  CHECK(rel_err(y, s.expected(1, x, ids)) < 1e-6);
}

// A whole train step of party a through the host: forward, backward, step_end.
void check_train_step(Service& s, net::Client& c, uint64_t rid, int64_t step) {
  auto x = torch::randn({5, s.m.d_model});
  auto reply = call(c, forward(rid, "a", step, 0, proto::ExpertMode::train, {4, 1, 4, 4, 1}, x), s.limits);
  if (const auto* e = std::get_if<proto::ErrorMsg>(&reply)) FAIL("train forward refused: " << e->reason);
  auto back = call(c, backward(rid, torch::ones({5, s.m.d_model})), s.limits);
  const auto* b = std::get_if<proto::ExpertBackwardReply>(&back);
  if (const auto* e = std::get_if<proto::ErrorMsg>(&back)) FAIL("backward refused: " << e->reason);
  REQUIRE(b != nullptr);
  CHECK(std::isfinite(b->grad_sq_norm));
  CHECK(b->grad_sq_norm > 0);
  proto::StepEnd se;
  se.requester = "a";
  se.step = step;
  se.clip_scale = 1.0;
  auto ack = call(c, se, s.limits);
  if (const auto* e = std::get_if<proto::ErrorMsg>(&ack)) FAIL("step_end refused: " << e->reason);
  REQUIRE(std::holds_alternative<proto::StepEndAck>(ack));
  CHECK(std::get<proto::StepEndAck>(ack).experts_stepped == 2);
}

}  // namespace

TEST_CASE("expert service: a request before the host is installed gets busy with its request id",
          "[integration][party][expert_service]") {
  Service s(/*install=*/false);
  auto a = s.client(0);
  auto reply =
      call(*a, forward(77, "a", 0, 0, proto::ExpertMode::train, {1}, torch::randn({1, 16})), s.limits);
  // Busy, not a dead end: the requester retries (the host is still building its trainer, e.g.
  // right after the federation started or a party rejoined), and the request id lets it match
  // the answer instead of waiting request_timeout_ms for one.
  auto e = expect_error(reply, ErrorCode::busy);
  CHECK(e.request_id == 77);
  CHECK(e.in_reply_to == static_cast<uint16_t>(proto::MsgType::expert_forward));
}

TEST_CASE("expert service: semantically bad requests get the right error code, the host stays usable",
          "[integration][party][expert_service]") {
  torch::manual_seed(3);
  Service s(/*install=*/true);
  auto a = s.client(0);
  auto c = s.client(2);
  const auto train = proto::ExpertMode::train;
  const auto eval = proto::ExpertMode::eval;

  SECTION("rows of the wrong width (d_model + 1): bad_shape, from the decoder") {
    auto e = expect_error(call(*a, forward(1, "a", 0, 0, train, {1, 4}, torch::randn({2, 17})), s.limits),
                          ErrorCode::bad_shape);
    CHECK(e.request_id == 1);
  }
  SECTION("experts this host does not host: unavailable") {
    expect_error(call(*a, forward(2, "a", 0, 0, train, {1, 0}, torch::randn({2, 16})), s.limits),
                 ErrorCode::unavailable);
    expect_error(call(*a, forward(3, "a", 0, 1, eval, {5}, torch::randn({1, 16})), s.limits),
                 ErrorCode::unavailable);
  }
  SECTION("a layer that is not a MoE layer: bad_field") {
    expect_error(call(*a, forward(4, "a", 0, 7, eval, {1}, torch::randn({1, 16})), s.limits),
                 ErrorCode::bad_field);
  }
  SECTION("a backward for a request id never seen: unknown_request") {
    auto e =
        expect_error(call(*a, backward(999, torch::ones({3, 16})), s.limits), ErrorCode::unknown_request);
    CHECK(e.request_id == 999);
  }
  SECTION("a step_end for a step never opened: out_of_order") {
    proto::StepEnd se;
    se.requester = "a";
    se.step = 41;
    expect_error(call(*a, se, s.limits), ErrorCode::out_of_order);
  }
  SECTION("NaN rows: non_finite, from the decoder") {
    auto x = torch::randn({3, 16});
    x[1][5] = std::nanf("");
    expect_error(call(*a, forward(5, "a", 0, 0, train, {1, 4, 1}, x), s.limits), ErrorCode::non_finite);
    x[1][5] = INFINITY;
    expect_error(call(*a, forward(6, "a", 0, 0, train, {1, 4, 1}, x, DType::bf16), s.limits),
                 ErrorCode::non_finite);
  }
  SECTION("a requester field that is not the authenticated CURVE identity: unknown_party") {
    auto e = expect_error(call(*a, forward(7, "c", 0, 0, train, {1}, torch::randn({1, 16})), s.limits),
                          ErrorCode::unknown_party);
    CHECK_THAT(e.reason, Catch::Contains("'c'") && Catch::Contains("'a'"));
    proto::StepEnd se;
    se.requester = "c";
    expect_error(call(*a, se, s.limits), ErrorCode::unknown_party);
  }
  SECTION("a message type the expert service does not take: unknown_type") {
    proto::Hello h;
    h.party_id = "a";
    expect_error(call(*a, h, s.limits), ErrorCode::unknown_type);
  }
  SECTION("while c holds an open train step: a's eval forward is served, a's train forward is busy") {
    auto xc = torch::randn({4, 16});
    auto opened = call(*c, forward(10, "c", 3, 0, train, {1, 4, 4, 1}, xc), s.limits);
    REQUIRE(std::holds_alternative<proto::ExpertForwardReply>(opened));
    // Eval-mode requests keep nothing and do not touch the open step: served (a final evaluation
    // may overlap another party's step).
    check_host_computes(s, *a, 11);
    auto busy = expect_error(call(*a, forward(12, "a", 4, 0, train, {1}, torch::randn({1, 16})), s.limits),
                             ErrorCode::busy);
    CHECK_THAT(busy.reason, Catch::Contains("'c'"));
    // a cannot complete c's request, nor end c's step.
    expect_error(call(*a, backward(10, torch::ones({4, 16})), s.limits), ErrorCode::unknown_request);
    proto::StepEnd se_a;
    se_a.requester = "a";
    se_a.step = 3;
    expect_error(call(*a, se_a, s.limits), ErrorCode::out_of_order);
    // c's step is intact: backward and step_end succeed.
    auto back = call(*c, backward(10, torch::ones({4, 16})), s.limits);
    REQUIRE(std::holds_alternative<proto::ExpertBackwardReply>(back));
    REQUIRE(std::holds_alternative<proto::StepEndAck>(call(*c, step_end("c", 3, 0.5), s.limits)));
  }
  // Whatever was refused above, the host answers correctly and completes a train step.
  check_host_computes(s, *a, 100);
  check_train_step(s, *a, 101, 50);
  check_host_computes(s, *a, 102);
}

TEST_CASE(
    "expert service: requests in flight are answered in order, each exactly; outputs that are not "
    "finite drop their kept rows",
    "[integration][party][expert_service]") {
  // The service launches a request while the one before it is still being completed (its own
  // thread): many requests sent at once, without waiting, must come back in order and exact, and a
  // train forward whose outputs are not finite must leave nothing kept (its rows are kept when it
  // is launched, before the outputs are checked).
  torch::manual_seed(9);
  Service s(/*install=*/true);
  auto a = s.client(0);
  const auto train = proto::ExpertMode::train;
  const auto eval = proto::ExpertMode::eval;
  const std::vector<int64_t> ids = {1, 4, 4, 1, 1, 4, 1};
  std::vector<torch::Tensor> xs;
  std::vector<proto::Message> sent;
  for (uint64_t i = 0; i < 12; ++i) {
    xs.push_back(torch::randn({7, 16}));
    if (i == 5 || i == 10) {
      // Finite rows that the experts turn into Inf: non_finite, and nothing kept (fp8: the reply's
      // scales say so, as no other check runs).
      sent.push_back(forward(200 + i, "a", 60, 0, train, ids, torch::full({7, 16}, 1e30f),
                             i == 5 ? DType::f32 : DType::f8e4m3));
    } else if (i == 8) {
      sent.push_back(forward(200 + i, "a", 60, 0, train, ids, xs.back()));
    } else {
      sent.push_back(
          forward(200 + i, "a", 1000, i % 2, eval, ids, xs.back(), i % 3 ? DType::f32 : DType::bf16));
    }
  }
  for (const auto& m : sent) REQUIRE(net::send_message(*a, m, kWaitMs));
  for (uint64_t i = 0; i < sent.size(); ++i) {
    auto reply = net::recv_message(*a, kWaitMs, s.limits);
    REQUIRE(reply.has_value());
    INFO("request " << i);
    if (i == 5 || i == 10) {
      auto e = expect_error(*reply, ErrorCode::non_finite);
      CHECK(e.request_id == 200 + i);
      continue;
    }
    const auto* r = std::get_if<proto::ExpertForwardReply>(&*reply);
    if (const auto* e = std::get_if<proto::ErrorMsg>(&*reply)) FAIL("refused: " << e->reason);
    REQUIRE(r != nullptr);
    CHECK(r->request_id == 200 + i);
    const auto dtype = std::get<proto::ExpertForward>(sent[i]).rows.dtype;
    auto x = party::from_wire(std::get<proto::ExpertForward>(sent[i]).rows, torch::kCPU, torch::kFloat32);
    auto y = party::from_wire(r->outputs, torch::kCPU, torch::kFloat32);
    CHECK(r->outputs.dtype == dtype);
    CHECK(rel_err(y, s.expected(i == 8 ? 0 : static_cast<int>(i % 2), x, ids)) <
          (dtype == DType::bf16 ? 1e-2 : 1e-6));
  }
  // The refused forward kept nothing: its backward is unknown, and only request 208's rows are kept.
  expect_error(call(*a, backward(205, torch::ones({7, 16})), s.limits), ErrorCode::unknown_request);
  expect_error(call(*a, backward(210, torch::ones({7, 16})), s.limits), ErrorCode::unknown_request);
  CHECK(s.party->host->stats().stash_bytes > 0);
  auto back = call(*a, backward(208, torch::ones({7, 16})), s.limits);
  REQUIRE(std::holds_alternative<proto::ExpertBackwardReply>(back));
  CHECK(s.party->host->stats().stash_bytes == 0);
  REQUIRE(std::holds_alternative<proto::StepEndAck>(call(*a, step_end("a", 60, 1.0), s.limits)));
  check_host_computes(s, *a, 300);

  // A requester that does not wait for its backward reply before its step_end (a hostile one):
  // gradients that are not finite still drop the step before the step_end is handled, so the
  // experts never take them.
  auto x = torch::randn({7, 16});
  REQUIRE(std::holds_alternative<proto::ExpertForwardReply>(
      call(*a, forward(400, "a", 61, 0, train, ids, x), s.limits)));
  REQUIRE(net::send_message(*a, backward(400, torch::full({7, 16}, 1e38f)), kWaitMs));
  REQUIRE(net::send_message(*a, step_end("a", 61, 1.0), kWaitMs));
  auto bad = net::recv_message(*a, kWaitMs, s.limits);
  REQUIRE(bad.has_value());
  expect_error(*bad, ErrorCode::non_finite);
  auto end = net::recv_message(*a, kWaitMs, s.limits);
  REQUIRE(end.has_value());
  expect_error(*end, ErrorCode::out_of_order);
  check_host_computes(s, *a, 401);
}

// ---- fuzzing ----

namespace {

// Valid encodings of what the expert service takes (a train step of party a: forward, backward,
// step_end, step_abort; eval forwards in every wire dtype), and of what it must refuse.
std::vector<Frames> seeds() {
  std::vector<proto::Message> m;
  const std::vector<int64_t> ids = {1, 4, 1, 1, 4, 4, 1, 4};
  for (DType d : {DType::f32, DType::bf16, DType::f16}) {
    m.push_back(forward(1, "a", 5, 0, proto::ExpertMode::train, ids, torch::randn({8, 16}), d));
    m.push_back(forward(2, "a", 5, 1, proto::ExpertMode::eval, ids, torch::randn({8, 16}), d));
  }
  m.push_back(forward(3, "a", 6, 1, proto::ExpertMode::train, {4}, torch::randn({1, 16})));
  m.push_back(backward(1, torch::randn({8, 16})));
  m.push_back(backward(3, torch::randn({1, 16})));
  proto::StepEnd se;
  se.requester = "a";
  se.step = 5;
  se.clip_scale = 0.5;
  m.push_back(se);
  proto::StepAbort ab;
  ab.requester = "a";
  ab.step = 6;
  ab.reason = "fuzz";
  m.push_back(ab);
  proto::Hello h;
  h.party_id = "a";
  m.push_back(h);
  m.push_back(proto::Heartbeat{1, 2, "training"});
  m.push_back(proto::StatusRequest{true});
  proto::ExpertForwardReply r;
  r.request_id = 1;
  r.outputs = party::to_wire(torch::randn({2, 16}), DType::f32);
  m.push_back(r);
  std::vector<Frames> out;
  for (const auto& msg : m) out.push_back(proto::encode(msg));
  return out;
}

}  // namespace

TEST_CASE("expert service survives 100,000 fuzzed frame sets and still computes correctly",
          "[integration][fuzz][party][expert_service]") {
  torch::manual_seed(7);
  Service s(/*install=*/true);
  const auto valid = seeds();
  auto fuzzer = s.client(0);
  constexpr uint64_t kIterations = 100000;
  Rng rng(0xe4be'f022);
  uint64_t sent = 0;
  test::ReplyTally tally;
  auto drain = [&](int timeout_ms) { tally.drain(*fuzzer, timeout_ms, s.limits, "the expert service"); };

  const auto start = std::chrono::steady_clock::now();
  while (sent < kIterations) {
    Frames f;
    if (rng.below(10) == 0) {
      f = test::random_frames(rng, 1);
    } else {
      f = valid[rng.below(valid.size())];
      if (rng.below(4) == 0) test::swap_field_type(rng, f);
      for (uint64_t n = rng.below(4); n > 0; --n) {
        switch (rng.below(4)) {
          case 0:
            test::mutate_bytes(rng, f, 1);
            break;
          case 1:
            if (f.size() > 2) test::mutate_bytes(rng, f, 2 + rng.below(f.size() - 2));
            break;
          case 2:
            test::inject_non_finite(rng, f);
            break;
          default:
            test::mutate_frames(rng, f);
        }
      }
    }
    if (f.empty()) continue;
    REQUIRE(fuzzer->send(f, kWaitMs));
    ++sent;
    if (sent % 256 == 0) drain(0);
  }
  // Sync: the service handles one message at a time in order, so once the answer to a marker
  // sent after the fuzz arrives, every fuzzed message has been handled (asked again in case a
  // reply was dropped because our queue was full).
  bool synced = false;
  for (int64_t marker = 900'000'000; !synced && marker < 900'000'010; ++marker) {
    proto::StepAbort sync;
    sync.requester = "a";
    sync.step = marker;
    REQUIRE(net::send_message(*fuzzer, sync, kWaitMs));
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (!synced && std::chrono::steady_clock::now() < until) {
      auto in = fuzzer->recv(100);
      if (!in) continue;
      ++tally.replies;
      auto m = proto::decode(in->frames, s.limits);
      const auto* ack = std::get_if<proto::StepAbortAck>(&m);
      synced = ack != nullptr && ack->step == marker;
    }
  }
  REQUIRE(synced);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const std::string summary = test::counts_text(tally.answers);
  std::printf("expert service fuzz: %llu frame sets in %.2f s, %llu replies:%s\n",
              static_cast<unsigned long long>(sent), secs, static_cast<unsigned long long>(tally.replies),
              summary.c_str());
  CHECK(tally.replies > sent / 2);
  CHECK(tally.answers.size() >= 8);                  // the mutations reach many rejection paths
  CHECK(tally.answers["expert_forward_reply"] > 0);  // and the host's computation
  CHECK(s.server->bad_messages() > 0);

  // Nothing crashed and nothing is corrupted: the host computes exactly what its experts compute,
  // also after a full train step, on a fresh connection.
  auto a = s.client(0);
  check_host_computes(s, *a, 1'000'001);
  check_train_step(s, *a, 1'000'002, 1'000'000);
  check_host_computes(s, *a, 1'000'003);
  for (const auto& [name, p] : s.party->shard->named_expert_params()) {
    INFO(name);
    CHECK(torch::isfinite(p).all().item<bool>());
  }
}
