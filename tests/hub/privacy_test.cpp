// Privacy proof of the hub (DESIGN.md: the hub never receives a token id, label, text, backbone
// weight or activation):
//   1. the set of message types a running hub accepts is exactly kAccepted — checked over EVERY
//      MsgType of messages.h, each sent as a valid message to a live hub over a socket: every other
//      type (the expert_* / step_* activation path, and the hub-to-party types) is answered with
//      ErrorMsg unknown_type and changes no state;
//   2. none of the accepted types carries a token id, label, text, position or activation: their
//      complete field lists (walked with proto/fields.h, the list the codec itself uses) are pinned
//      below, and the only tensors among them are Snapshot's, role `parameters` — which the hub
//      accepts only under expert-parameter names of the sender's own experts (pool_layout.h; see
//      "snapshots: ... bad snapshots are refused"). Adding a field to an accepted type fails this
//      test on purpose: review it for privacy, then update the list.
// Free-text fields (reasons, state names, paths) are the sender's own words; the hub never asks
// for data in them and only logs them clipped.
#include <catch2/catch.hpp>

#include <array>
#include <map>
#include <set>

#include "hub_test_util.h"
#include "proto/fields.h"
#include "proto/proto_test_util.h"
#include "test_util.h"

using namespace pcmoe;
using proto::MsgType;

namespace {

constexpr std::array<MsgType, 35> kAllTypes = {MsgType::hello,
                                               MsgType::welcome,
                                               MsgType::reject,
                                               MsgType::directory,
                                               MsgType::turn,
                                               MsgType::step_report,
                                               MsgType::turn_done,
                                               MsgType::expert_load,
                                               MsgType::heartbeat,
                                               MsgType::status_request,
                                               MsgType::status,
                                               MsgType::control,
                                               MsgType::control_ack,
                                               MsgType::checkpoint_request,
                                               MsgType::checkpoint_done,
                                               MsgType::snapshot_request,
                                               MsgType::snapshot,
                                               MsgType::pool_request,
                                               MsgType::pool,
                                               MsgType::stop,
                                               MsgType::bye,
                                               MsgType::error,
                                               MsgType::turn_notice,
                                               MsgType::round_close,
                                               MsgType::round_norm,
                                               MsgType::round_commit,
                                               MsgType::round_commit_ack,
                                               MsgType::expert_forward,
                                               MsgType::expert_forward_reply,
                                               MsgType::expert_backward,
                                               MsgType::expert_backward_reply,
                                               MsgType::step_end,
                                               MsgType::step_end_ack,
                                               MsgType::step_abort,
                                               MsgType::step_abort_ack};
// Every alternative of proto::Message is one of kAllTypes (checked at run time below, per value).
static_assert(std::variant_size_v<proto::Message> == kAllTypes.size(),
              "a message type was added: extend this test");

const std::set<MsgType> kAccepted = {
    MsgType::hello,           MsgType::step_report, MsgType::turn_done,       MsgType::heartbeat,
    MsgType::status_request,  MsgType::control,     MsgType::checkpoint_done, MsgType::snapshot,
    MsgType::pool_request,    MsgType::bye,         MsgType::error,           MsgType::round_norm,
    MsgType::round_commit_ack};

// Lists a message's fields through the codec's own field table.
struct FieldLister {
  std::vector<std::string> keys;
  std::vector<std::pair<std::string, proto::TensorRole>> tensor_fields;

  void str(const char* k, const std::string&) { keys.emplace_back(k); }
  void boolean(const char* k, bool) { keys.emplace_back(k); }
  template <class T>
  void uint(const char* k, const T&, uint64_t = 0, uint64_t = 0) {
    keys.emplace_back(k);
  }
  void int64(const char* k, int64_t, int64_t) { keys.emplace_back(k); }
  void real(const char* k, double, proto::Real) { keys.emplace_back(k); }
  template <class E>
  void enumeration(const char* k, const E&, uint64_t) {
    keys.emplace_back(k);
  }
  template <class T>
  void uints(const char* k, const std::vector<T>&, uint64_t = 0) {
    keys.emplace_back(k);
  }
  template <class T>
  void optional_uint(const char* k, const T&) {
    keys.emplace_back(k);
  }
  template <class T>
  void optional_uints(const char* k, const std::vector<T>&) {
    keys.emplace_back(k);
  }
  void optional_str(const char* k, const std::string&) { keys.emplace_back(k); }
  template <class T>
  void uint_matrix(const char* k, const std::vector<std::vector<T>>&) {
    keys.emplace_back(k);
  }
  void real_matrix(const char* k, const std::vector<std::vector<double>>&, proto::Real) {
    keys.emplace_back(k);
  }
  void strs(const char* k, const std::vector<std::string>&) { keys.emplace_back(k); }
  void tensor(const char* k, const proto::WireTensor&, proto::TensorRole r) {
    keys.emplace_back(k);
    tensor_fields.emplace_back(k, r);
  }
  void tensors(const char* k, const std::vector<proto::WireTensor>&, proto::TensorRole r) {
    keys.emplace_back(k);
    tensor_fields.emplace_back(k, r);
  }
  template <class E>
  void entries(const char* k, const std::vector<E>&) {
    keys.emplace_back(k);
  }
};

FieldLister fields_of(const proto::Message& m) {
  FieldLister l;
  std::visit([&](const auto& x) { proto::fields(l, x, proto::Of<std::decay_t<decltype(x)>>{}); }, m);
  return l;
}

// What a state change would show in the status (not the clocks).
std::string fingerprint(const proto::Status& s) {
  std::string f = fmt::format("{}|{}|{}|{}|", s.state, s.step, s.turn_party, s.pool_step);
  for (const auto& p : s.parties) {
    f += fmt::format("{}:{}:{}:{}:{}:{};", p.party_id, p.alive, p.state, p.steps_done, p.tokens, p.last_loss);
  }
  for (const auto& row : s.load_running) {
    for (double x : row) f += fmt::format("{},", x);
  }
  return f;
}

// Sends `m` and then a heartbeat with `seq`; returns what came back before that heartbeat's answer.
std::vector<proto::Message> exchange(test::FakeParty& p, const proto::Message& m, uint64_t seq) {
  REQUIRE(p.send(m));
  REQUIRE(p.send(proto::Heartbeat{seq, 0, "serving"}));
  std::vector<proto::Message> got;
  auto deadline = hub::Clock::now() + std::chrono::milliseconds(test::kWaitMs);
  while (hub::Clock::now() < deadline) {
    auto r = p.recv(100);
    if (!r) continue;
    if (auto* hb = std::get_if<proto::Heartbeat>(&*r); hb && hb->seq == seq) return got;
    got.push_back(*r);
  }
  FAIL("no answer to the sentinel heartbeat " << seq);
  return got;
}

bool has_unknown_type(const std::vector<proto::Message>& ms, MsgType t) {
  for (const auto& m : ms) {
    if (auto* e = std::get_if<proto::ErrorMsg>(&m);
        e && e->code == uint16_t(proto::ErrorCode::unknown_type) && e->in_reply_to == uint16_t(t)) {
      return true;
    }
  }
  return false;
}

}  // namespace

TEST_CASE("privacy: the accepted types carry no token, label, text, position or activation", "[unit][hub]") {
  const std::map<MsgType, std::vector<std::string>> kFields = {
      {MsgType::hello, {"pid", "pmaj", "pmin", "mhash", "ep", "ckey", "mem", "rstep", "sess"}},
      {MsgType::step_report,
       {"turn", "step", "loss", "aux", "tok", "lr", "ms", "bsent", "brecv", "peak", "cnt", "gate", "eval"}},
      {MsgType::turn_done, {"turn", "ndone", "ok", "why", "suspect"}},
      {MsgType::heartbeat, {"seq", "step", "state"}},
      {MsgType::status_request, {"load"}},
      {MsgType::control, {"act"}},
      {MsgType::checkpoint_done, {"step", "ok", "path", "why"}},
      {MsgType::snapshot, {"sid", "step", "names", "ts"}},
      {MsgType::pool_request, {"minstep"}},
      {MsgType::bye, {"why"}},
      {MsgType::error, {"code", "why", "re", "rid"}},
      {MsgType::round_norm, {"step", "gsq", "nexp"}},
      {MsgType::round_commit_ack, {"step", "nexp"}},
  };
  const auto samples = test::every_type_sample();
  REQUIRE(samples.size() == kAllTypes.size());
  for (size_t i = 0; i < samples.size(); ++i) {
    const MsgType t = proto::type_of(samples[i]);
    CHECK(t == kAllTypes[i]);
    CHECK(hub::HubState::accepts(t) == (kAccepted.count(t) > 0));
    if (!kAccepted.count(t)) continue;
    INFO(proto::msg_type_name(t));
    FieldLister l = fields_of(samples[i]);
    CHECK(l.keys == kFields.at(t));
    if (t == MsgType::snapshot) {
      REQUIRE(l.tensor_fields.size() == 1);
      CHECK(l.tensor_fields[0].second == proto::TensorRole::parameters);
    } else {
      CHECK(l.tensor_fields.empty());  // no activations, token ids or any other tensor
    }
  }
  // kAllTypes is every type messages.h names (any other number is "unknown").
  std::set<MsgType> all(kAllTypes.begin(), kAllTypes.end());
  for (uint32_t v = 0; v <= 0xffff; ++v) {
    const bool named = proto::msg_type_name(static_cast<MsgType>(v)) != "unknown";
    if (named != (all.count(static_cast<MsgType>(v)) > 0)) FAIL("type " << v << " is not covered");
  }
}

TEST_CASE("privacy: a running hub accepts exactly the control-plane types", "[integration][hub]") {
  test::TempDir dir;
  HubConfig cfg = test::small_hub_config({"a", "b"}, dir.path());
  cfg.train.steps = 1000;
  test::RunningHub hub(cfg);
  test::FakeParty a(hub.ctx(), hub.endpoint(), cfg, "a");
  test::FakeParty b(hub.ctx(), hub.endpoint(), cfg, "b");
  test::FakeParty stranger(hub.ctx(), hub.endpoint(), cfg, "nobody");
  for (auto* p : {&a, &b}) {
    p->auto_turns = false;  // hold the state still: the first turn stays outstanding
    p->heartbeats = false;  // only the sentinels below
    REQUIRE(p->join());
  }
  uint64_t seq = 1000;
  exchange(a, proto::Heartbeat{0, 0, "serving"}, ++seq);  // drain what came before (directory, turn)
  const auto samples = test::every_type_sample();
  std::vector<size_t> accepted_order;
  for (size_t i = 0; i < samples.size(); ++i) {
    const MsgType t = proto::type_of(samples[i]);
    if (kAccepted.count(t)) {
      accepted_order.push_back(i);
      continue;
    }
    INFO("type " << proto::msg_type_name(t));
    const std::string before = fingerprint(hub.status());
    // From a registered party and from a connection that never said hello: refused the same way.
    auto got = exchange(a, samples[i], ++seq);
    REQUIRE(got.size() == 1);
    CHECK(has_unknown_type(got, t));
    REQUIRE(stranger.send(samples[i]));
    auto e = stranger.wait_for<proto::ErrorMsg>();
    REQUIRE(e);
    CHECK(e->code == uint16_t(proto::ErrorCode::unknown_type));
    CHECK(fingerprint(hub.status()) == before);
  }
  // The accepted ones are handled (answered or acted on), never refused as unknown. Bye last: it
  // makes `a` leave.
  std::stable_partition(accepted_order.begin(), accepted_order.end(),
                        [&](size_t i) { return proto::type_of(samples[i]) != MsgType::bye; });
  for (size_t i : accepted_order) {
    const MsgType t = proto::type_of(samples[i]);
    INFO("type " << proto::msg_type_name(t));
    if (t == MsgType::bye) {
      REQUIRE(a.send(samples[i]));
      REQUIRE(test::pump_until({&b}, [&] { return !hub.status().parties[0].alive; }));
      continue;
    }
    auto got = exchange(a, samples[i], ++seq);
    CHECK_FALSE(has_unknown_type(got, t));
    for (const auto& m : got) {
      if (auto* err = std::get_if<proto::ErrorMsg>(&m))
        CHECK(err->code != uint16_t(proto::ErrorCode::unknown_party));
    }
    if (t == MsgType::hello) CHECK(std::holds_alternative<proto::Reject>(got.at(0)));  // "alice" is not ours
    if (t == MsgType::status_request) CHECK(std::holds_alternative<proto::Status>(got.at(0)));
    if (t == MsgType::control) CHECK(std::holds_alternative<proto::ControlAck>(got.at(0)));
    if (t == MsgType::pool_request) CHECK(std::holds_alternative<proto::Pool>(got.at(0)));
    if (t == MsgType::error || t == MsgType::checkpoint_done) CHECK(got.empty());
  }
}
