// Test helpers for lib/hub (see hub_test_util.h).
#include "hub_test_util.h"

#include <future>

#include "hub/pool_layout.h"
#include "net/rpc.h"
#include "proto/wire_tensor.h"

namespace pcmoe::test {

HubConfig small_hub_config(const std::vector<std::string>& party_ids, const std::string& out_dir) {
  HubConfig c;
  c.model.d_model = 8;
  c.model.n_heads = 2;
  c.model.d_ff = 16;
  c.model.n_layers = 2;
  c.model.n_experts = 4;
  c.model.top_k = 2;
  c.model.moe_layers = "all";
  c.train.steps = 12;
  for (const auto& id : party_ids) c.hub.parties.push_back({id, ""});
  c.hub.bind = "tcp://127.0.0.1:*";
  c.hub.steps_per_turn = 1;
  c.hub.seed = 7;
  c.hub.heartbeat_ms = 50;
  c.hub.party_timeout_ms = 1000;
  c.hub.load_window_steps = 3;
  c.hub.out_dir = out_dir.empty() ? "/nonexistent-hub-test-dir" : out_dir;
  c.hub.snapshot_every = 0;  // no snapshot rounds unless a test asks for them
  c.hub.insecure = true;     // plain mode unless a test sets up CURVE
  return c;
}

proto::Hello hello_for(const HubConfig& cfg, const std::string& id) {
  proto::Hello h;
  h.party_id = id;
  h.model_hash = model_config_hash(cfg.model, cfg.train);
  h.expert_endpoint = "tcp://127.0.0.1:7001";
  h.memory_budget_bytes = uint64_t{1} << 30;
  return h;
}

std::vector<std::vector<uint64_t>> ramp_counts(const HubConfig& cfg, uint64_t scale) {
  std::vector<std::vector<uint64_t>> c;
  for (size_t l = 0; l < cfg.model.moe_layer_indices().size(); ++l) {
    std::vector<uint64_t> row;
    for (int e = 0; e < cfg.model.n_experts; ++e) row.push_back(static_cast<uint64_t>(e + 1) * scale);
    c.push_back(row);
  }
  return c;
}

proto::StepReport report_for(const HubConfig& cfg, uint64_t turn_id, int64_t step, uint64_t scale) {
  proto::StepReport r;
  r.turn_id = turn_id;
  r.step = step;
  r.loss = 3.0 - 0.01 * static_cast<double>(step);
  r.tokens = 1024;
  r.step_ms = 100;
  r.bytes_sent = 1000;
  r.bytes_received = 2000;
  r.peak_memory_bytes = uint64_t{300} << 20;
  r.expert_counts = ramp_counts(cfg, scale);
  for (const auto& row : r.expert_counts) r.gate_mean.emplace_back(row.size(), 0.25);
  return r;
}

proto::Snapshot snapshot_for(const HubConfig& cfg, uint32_t index, uint64_t snapshot_id, int64_t step,
                             float value) {
  hub::PoolLayout layout(cfg.model, static_cast<uint32_t>(cfg.hub.parties.size()));
  proto::Snapshot s;
  s.snapshot_id = snapshot_id;
  s.step = step;
  for (const auto& name : layout.names_of(index)) {
    auto shape = layout.shape_of(hub::parse_expert_param(name)->param);
    s.names.push_back(name);
    s.tensors.push_back(
        proto::make_f32(shape, std::vector<float>(static_cast<size_t>(shape[0] * shape[1]), value)));
  }
  return s;
}

// ---- HubHarness ----

HubHarness::HubHarness(HubConfig cfg, hub::HubOptions options)
    : cfg_(std::move(cfg)), now_(hub::Clock::now()) {
  hub_ = std::make_unique<hub::HubState>(cfg_, store_, "run-test", now_, std::move(options));
}

std::vector<hub::Outgoing> HubHarness::send(const std::string& peer, const proto::Message& m,
                                            const std::string& key) {
  return hub_->on_message(peer, key, m, now_);
}

std::vector<hub::Outgoing> HubHarness::join(const std::string& id) {
  return send(peer(id), hello_for(cfg_, id));
}

std::vector<hub::Outgoing> HubHarness::join_all() {
  std::vector<hub::Outgoing> last;
  for (const auto& p : cfg_.hub.parties) last = join(p.id);
  return last;
}

std::vector<hub::Outgoing> HubHarness::play(const proto::Turn& t, uint64_t scale) {
  const auto& active = hub_->scheduler().active();
  std::string holder = peer(hub_->registry().at(active->party).id);
  std::vector<hub::Outgoing> out;
  for (uint32_t i = 0; i < t.n_steps; ++i) {
    auto o = send(holder, report_for(cfg_, t.turn_id, t.step_begin + i, scale));
    out.insert(out.end(), o.begin(), o.end());
  }
  auto o = send(holder, proto::TurnDone{t.turn_id, t.n_steps, true, "", ""});
  out.insert(out.end(), o.begin(), o.end());
  return out;
}

std::vector<hub::Outgoing> HubHarness::answer_snapshots(std::vector<hub::Outgoing> out) {
  for (const auto& req : of_type<proto::SnapshotRequest>(out)) {
    for (const auto& p : hub_->registry().parties()) {
      if (!p.alive) continue;
      auto o = send(p.peer, snapshot_for(cfg_, p.index, req.snapshot_id, hub_->step(),
                                         0.25f + static_cast<float>(p.index)));
      out.insert(out.end(), o.begin(), o.end());
    }
  }
  return out;
}

void HubHarness::heartbeat_all() {
  for (const auto& p : hub_->registry().parties()) {
    if (p.alive) send(p.peer, proto::Heartbeat{1, 0, "training"});
  }
}

// ---- FakeParty ----

FakeParty::FakeParty(zmq::context_t& ctx, const std::string& hub_endpoint, const HubConfig& cfg,
                     std::string id, std::optional<net::CurveKeyPair> keys, const std::string& hub_key)
    : cfg_(cfg), id_(std::move(id)), public_key_(keys ? keys->public_key : "") {
  net::ClientOptions o;
  o.endpoint = hub_endpoint;
  o.curve = std::move(keys);
  o.server_public_key = hub_key;
  client_ = std::make_unique<net::Client>(ctx, o);
}

int FakeParty::remaining(hub::TimePoint deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - hub::Clock::now()).count();
  return static_cast<int>(std::max<int64_t>(0, left));
}

bool FakeParty::send(const proto::Message& m) { return net::send_message(*client_, m, kWaitMs); }

void FakeParty::maybe_heartbeat() {
  if (!heartbeats || !welcome) return;
  auto now = hub::Clock::now();
  if (now - last_heartbeat_ < std::chrono::milliseconds(heartbeat_ms)) return;
  last_heartbeat_ = now;
  send(proto::Heartbeat{++hb_seq_, 0, "training"});
}

std::optional<proto::Message> FakeParty::recv(int timeout_ms) {
  auto deadline = hub::Clock::now() + std::chrono::milliseconds(timeout_ms);
  do {
    maybe_heartbeat();
    int slice = std::min(remaining(deadline), heartbeats && welcome ? heartbeat_ms : timeout_ms);
    auto m = net::recv_message(*client_, slice, proto::Limits{});
    if (m) {
      inbox.push_back(*m);
      return m;
    }
  } while (hub::Clock::now() < deadline);
  return std::nullopt;
}

std::optional<proto::Welcome> FakeParty::join(int timeout_ms) {
  proto::Hello h = hello_for(cfg_, id_);
  h.curve_public_key = public_key_;
  return join_with(h, timeout_ms);
}

std::optional<proto::Welcome> FakeParty::join_with(const proto::Hello& h, int timeout_ms) {
  if (!send(h)) return std::nullopt;
  auto deadline = hub::Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (hub::Clock::now() < deadline) {
    auto m = recv(remaining(deadline));
    if (!m) continue;
    if (auto* w = std::get_if<proto::Welcome>(&*m)) {
      welcome = *w;
      return welcome;
    }
    if (auto* r = std::get_if<proto::Reject>(&*m)) {
      reject = *r;
      return std::nullopt;
    }
    react(*m);
  }
  return std::nullopt;
}

void FakeParty::react(const proto::Message& m) {
  if (const auto* t = std::get_if<proto::Turn>(&m); t && auto_turns) {
    for (uint32_t i = 0; i < t->n_steps; ++i) {
      send(report_for(cfg_, t->turn_id, t->step_begin + i));
      steps_taken.push_back(t->step_begin + i);
    }
    send(proto::TurnDone{t->turn_id, t->n_steps, true, "", ""});
  } else if (const auto* s = std::get_if<proto::SnapshotRequest>(&m); s && auto_snapshot && welcome) {
    send(snapshot_for(cfg_, welcome->party_index, s->snapshot_id, global_step));
  } else if (const auto* st = std::get_if<proto::Stop>(&m)) {
    if (st->reason == "release") {
      released = true;
    } else {
      stopped = true;
      if (auto_bye) {
        send(proto::PoolRequest{0});
        send(proto::Bye{"done"});
      }
    }
  } else if (const auto* l = std::get_if<proto::ExpertLoad>(&m)) {
    ++expert_loads;
    global_step = std::max(global_step, l->step);
  }
}

void FakeParty::pump(int timeout_ms) {
  if (auto m = recv(timeout_ms)) react(*m);
}

bool pump_until(const std::vector<FakeParty*>& parties, const std::function<bool()>& pred, int timeout_ms) {
  auto deadline = hub::Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (!pred()) {
    if (hub::Clock::now() >= deadline) return false;
    for (FakeParty* p : parties) p->pump(2);
  }
  return true;
}

// ---- RunningHub ----

hub::HubServerOptions RunningHub::fast_options() {
  hub::HubServerOptions o;
  o.use_signals = false;
  o.poll_ms = 10;
  o.timeouts.snapshot = std::chrono::milliseconds(3000);
  o.timeouts.bye = std::chrono::milliseconds(3000);
  o.run_id = "run-test";
  return o;
}

RunningHub::RunningHub(const HubConfig& cfg, hub::HubServerOptions options) {
  server_ = std::make_unique<hub::HubServer>(cfg, ctx_, std::move(options));
  exit_future_ = exit_promise_.get_future().share();
  thread_ = std::thread([this] {
    try {
      exit_promise_.set_value(server_->run());
    } catch (...) {
      exit_promise_.set_exception(std::current_exception());
    }
  });
}

RunningHub::~RunningHub() {
  if (thread_.joinable()) {
    server_->request_stop();
    server_->request_stop();
    thread_.join();
  }
}

std::optional<int> RunningHub::wait_exit(int timeout_ms) {
  if (exit_future_.wait_for(std::chrono::milliseconds(timeout_ms)) != std::future_status::ready)
    return std::nullopt;
  if (thread_.joinable()) thread_.join();
  return exit_future_.get();
}

std::optional<proto::Message> RunningHub::ask(const proto::Message& m, int timeout_ms) {
  net::ClientOptions o;
  o.endpoint = endpoint();
  net::Client c(ctx_, o);
  if (!net::send_message(c, m, timeout_ms)) return std::nullopt;
  return net::recv_message(c, timeout_ms, proto::Limits{});
}

proto::Status RunningHub::status() {
  auto m = ask(proto::StatusRequest{true});
  if (!m || !std::holds_alternative<proto::Status>(*m)) throw std::runtime_error("no status from the hub");
  return std::get<proto::Status>(*m);
}

}  // namespace pcmoe::test
