// Integration tests of HubServer over real sockets (ephemeral ports) with scripted fake parties:
// a whole run to the end, loss and rejoin, control and status, CURVE. Synchronisation is by
// receive timeouts and deadlines, never by sleeping.
#include <catch2/catch.hpp>

#include "common/fs.h"
#include "common/tensor_file.h"
#include "common/turns.h"
#include "hub/ctl.h"
#include "hub_test_util.h"
#include "net/curve.h"
#include "net/rpc.h"
#include "test_util.h"

using namespace pcmoe;
using namespace pcmoe::hub;
using test::FakeParty;
using test::RunningHub;

TEST_CASE("a federation of fake parties runs to the end over sockets", "[integration][hub]") {
  test::TempDir dir;
  HubConfig cfg = test::small_hub_config({"a", "b", "c"}, dir.path());
  cfg.train.steps = 14;
  cfg.hub.steps_per_turn = 2;
  cfg.hub.snapshot_every = 6;
  RunningHub hub(cfg);
  std::vector<std::unique_ptr<FakeParty>> owned;
  std::vector<FakeParty*> parties;
  for (const auto& p : cfg.hub.parties) {
    owned.push_back(std::make_unique<FakeParty>(hub.ctx(), hub.endpoint(), cfg, p.id));
    parties.push_back(owned.back().get());
  }
  for (auto* p : parties) REQUIRE(p->join());
  CHECK(parties[2]->welcome->party_index == 2);
  REQUIRE(test::pump_until(
      parties, [&] { return parties[0]->released && parties[1]->released && parties[2]->released; }));
  REQUIRE(hub.wait_exit(test::kWaitMs) == 0);

  // Every step was taken by the party TurnSchedule names.
  TurnSchedule ref(cfg.hub.seed, 3, 2);
  std::vector<int> taken(14, -1);
  for (size_t i = 0; i < parties.size(); ++i) {
    for (int64_t s : parties[i]->steps_taken) {
      REQUIRE(s < 14);
      CHECK(taken[s] == -1);
      taken[s] = static_cast<int>(i);
    }
  }
  for (int64_t s = 0; s < 14; ++s) CHECK(taken[s] == static_cast<int>(ref.party_at(s)));
  // Everyone saw every step's load, the stop and the release.
  for (auto* p : parties) {
    CHECK(p->expert_loads == 14);
    CHECK(p->stopped);
  }
  const HubState& st = hub.state();
  CHECK(st.step() == 14);
  CHECK(st.stop_reason() == "finished");
  CHECK(st.pool().step() == 13);
  TensorFile pool = read_tensor_file(fs::join(dir.path(), "pool.pcmoe"));
  CHECK(pool.tensors.size() == 24);
  CHECK(pool.meta_at("step") == "13");
  CHECK(fs::exists(fs::join(dir.path(), "hub_state.json")));
  std::string load = fs::read_file(fs::join(dir.path(), "expert_load.jsonl"));
  CHECK(std::count(load.begin(), load.end(), '\n') == 14);
}

TEST_CASE("a silent party is lost and its experts masked; it rejoins", "[integration][hub]") {
  test::TempDir dir;
  HubConfig cfg = test::small_hub_config({"a", "b"}, dir.path());
  cfg.train.steps = 1000000;
  cfg.hub.party_timeout_ms = 300;
  RunningHub hub(cfg);
  FakeParty a(hub.ctx(), hub.endpoint(), cfg, "a");
  auto b = std::make_unique<FakeParty>(hub.ctx(), hub.endpoint(), cfg, "b");
  REQUIRE(a.join());
  REQUIRE(b->join());
  REQUIRE(test::pump_until({&a, b.get()}, [&] { return a.steps_taken.size() + b->steps_taken.size() >= 4; }));
  // b goes quiet (no heartbeats, no turns): a hears that b's experts are gone.
  b->heartbeats = false;
  b->auto_turns = false;
  auto lost = [&] {
    for (const auto& m : a.inbox) {
      if (auto* d = std::get_if<proto::Directory>(&m); d && !d->directory[1].alive) return true;
    }
    return false;
  };
  REQUIRE(test::pump_until({&a}, lost));
  auto st = hub.status();
  CHECK_FALSE(st.parties[1].alive);
  CHECK(st.parties[1].state == "lost");
  // Training goes on with a alone.
  const size_t before = a.steps_taken.size();
  REQUIRE(test::pump_until({&a}, [&] { return a.steps_taken.size() >= before + 3; }));
  // b restarts (new connection) and rejoins: a is told, and b takes turns again.
  b = std::make_unique<FakeParty>(hub.ctx(), hub.endpoint(), cfg, "b");
  auto w = b->join();
  REQUIRE(w);
  CHECK(w->directory[1].alive);
  CHECK(w->step >= static_cast<int64_t>(before + 3));
  auto back = [&] {
    for (auto it = a.inbox.rbegin(); it != a.inbox.rend(); ++it) {
      if (auto* d = std::get_if<proto::Directory>(&*it)) return d->directory[1].alive;
    }
    return false;
  };
  REQUIRE(test::pump_until({&a, b.get()}, [&] { return back() && !b->steps_taken.empty(); }));
  CHECK(hub.status().parties[1].alive);
}

TEST_CASE("control and status over the socket; heartbeats answered", "[integration][hub]") {
  test::TempDir dir;
  HubConfig cfg = test::small_hub_config({"a", "b"}, dir.path());
  cfg.train.steps = 1000000;
  cfg.hub.exit_when_done = false;
  RunningHub hub(cfg);
  auto ack = [&](const std::string& action) {
    auto m = hub.ask(proto::Control{action});
    REQUIRE(m);
    REQUIRE(std::holds_alternative<proto::ControlAck>(*m));
    return std::get<proto::ControlAck>(*m);
  };
  auto s = hub.status();
  CHECK(s.state == "waiting");
  CHECK(s.run_id == "run-test");
  CHECK(s.parties.size() == 2);
  FakeParty a(hub.ctx(), hub.endpoint(), cfg, "a");
  FakeParty b(hub.ctx(), hub.endpoint(), cfg, "b");
  REQUIRE(a.join());
  REQUIRE(b.join());
  // Heartbeats are answered.
  REQUIRE(a.send(proto::Heartbeat{77, 0, "serving"}));
  auto hb = a.wait_for<proto::Heartbeat>();
  REQUIRE(hb);
  CHECK((hb->seq == 77 || hb->seq <= 3));  // ours, or an answer to one of its periodic heartbeats
  REQUIRE(test::pump_until({&a, &b}, [&] { return a.steps_taken.size() + b.steps_taken.size() >= 3; }));
  CHECK(ack("pause").ok);
  // The turn in flight finishes; after that nobody gets a turn.
  REQUIRE(test::pump_until({&a, &b}, [&] { return hub.status().turn_party.empty(); }));
  const size_t paused_at = a.steps_taken.size() + b.steps_taken.size();
  for (int i = 0; i < 20; ++i) {
    a.pump(5);
    b.pump(5);
  }
  CHECK(a.steps_taken.size() + b.steps_taken.size() == paused_at);
  CHECK(hub.status().state == "paused");
  CHECK(ack("resume").ok);
  REQUIRE(test::pump_until({&a, &b},
                           [&] { return a.steps_taken.size() + b.steps_taken.size() > paused_at + 2; }));
  CHECK_FALSE(ack("dance").ok);
  CHECK(ack("stop").ok);
  REQUIRE(test::pump_until({&a, &b}, [&] { return a.released && b.released; }));
  auto fin = hub.status();
  CHECK(fin.state == "finished");
  CHECK(fin.pool_step >= 0);
  // exit_when_done: false, and the stop came from Control: the hub keeps answering.
  CHECK_FALSE(hub.wait_exit(50));
}

TEST_CASE("CURVE: parties and pcmoe-ctl authenticate with their keys", "[integration][hub]") {
  if (!net::curve_available()) {
    WARN("libzmq without CURVE: skipped");
    return;
  }
  test::TempDir dir;
  HubConfig cfg = test::small_hub_config({"a", "b"}, dir.path());
  auto hub_keys = net::generate_keypair();
  auto a_keys = net::generate_keypair();
  auto b_keys = net::generate_keypair();
  auto op_keys = net::generate_keypair();
  cfg.hub.insecure = false;
  cfg.hub.secret_key_file = fs::join(dir.path(), "hub.key");
  net::write_key_file(cfg.hub.secret_key_file, hub_keys);
  cfg.hub.parties[0].public_key = a_keys.public_key;
  cfg.hub.parties[1].public_key = b_keys.public_key;
  cfg.hub.operators = {{"ops", op_keys.public_key, ""}};
  RunningHub hub(cfg);
  // b's key claiming to be a: refused.
  FakeParty impostor(hub.ctx(), hub.endpoint(), cfg, "a", b_keys, hub_keys.public_key);
  CHECK_FALSE(impostor.join());
  REQUIRE(impostor.reject);
  CHECK(impostor.reject->code == uint16_t(proto::ErrorCode::unknown_party));
  // The right key: welcome, with a's configured key in the directory.
  FakeParty a(hub.ctx(), hub.endpoint(), cfg, "a", a_keys, hub_keys.public_key);
  auto w = a.join();
  REQUIRE(w);
  CHECK(w->directory[0].curve_public_key == a_keys.public_key);
  CHECK(w->directory[1].curve_public_key == b_keys.public_key);
  // A key nobody configured cannot even connect.
  {
    net::ClientOptions o;
    o.endpoint = hub.endpoint();
    o.curve = net::generate_keypair();
    o.server_public_key = hub_keys.public_key;
    net::Client stranger(hub.ctx(), o);
    if (net::send_message(stranger, test::hello_for(cfg, "a"), 300)) {
      CHECK_FALSE(net::recv_message(stranger, 300, proto::Limits{}));
    }
  }
  // pcmoe-ctl with an operator's key pair: status and control.
  CtlTarget t{hub.endpoint(), op_keys, hub_keys.public_key, test::kWaitMs, ""};
  zmq::context_t ctx;
  auto st = ctl_call(ctx, t, proto::StatusRequest{true});
  REQUIRE(st);
  CHECK(std::get<proto::Status>(*st).parties[0].alive);
  auto ack = ctl_call(ctx, t, proto::Control{"pause"});
  REQUIRE(ack);
  CHECK(std::get<proto::ControlAck>(*ack).ok);
  // The hub's own key pair is no operator: it cannot even connect.
  CtlTarget own{hub.endpoint(), hub_keys, hub_keys.public_key, 500, ""};
  CHECK_FALSE(ctl_call(ctx, own, proto::StatusRequest{true}));
  // A party's key may neither control the hub nor read its status.
  REQUIRE(a.send(proto::Control{"resume"}));
  auto e = a.wait_for<proto::ErrorMsg>();
  REQUIRE(e);
  CHECK(e->code == uint16_t(proto::ErrorCode::unknown_party));
  REQUIRE(a.send(proto::StatusRequest{false}));
  auto e2 = a.wait_for<proto::ErrorMsg>();
  REQUIRE(e2);
  CHECK(e2->code == uint16_t(proto::ErrorCode::unknown_party));
}
