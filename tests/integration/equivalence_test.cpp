// THE central correctness test (issue: federation): with the same weights and the same batch, a
// federation of 3 parties talking over real ZeroMQ sockets on 127.0.0.1 gives the same loss, the
// same gradient of every backbone and expert parameter, and the same parameters after one
// optimizer step as the single-process model. fp32; tolerance: relative error < 1e-5.
// Runs with CURVE off and on (peers identified by their keys), with one connection per host and
// with three (party.links_per_host) carrying split experts' requests.
#include <catch2/catch.hpp>

#include "model/backbone.h"
#include "net/context.h"
#include "net/curve.h"
#include "party/expert_server.h"
#include "party/party_test_util.h"
#include "party/peer_links.h"

using namespace pcmoe;
using pcmoe::test::find_param;
using pcmoe::test::rel_err;

TEST_CASE("3-party federation over real sockets equals the single-process model (loss, grads, step)",
          "[integration][party][equivalence]") {
  const bool curve = GENERATE(false, true);
  // One connection per host and one request per host and layer; or three connections and requests
  // of at most 40 rows (each expert's ~66 rows split over two of its own, which may reach the host in either
  // order).
  const auto [links_per_host, max_rows] = GENERATE(std::make_pair(1, 0), std::make_pair(3, 40));
  INFO("CURVE " << (curve ? "on" : "off") << ", links per host " << links_per_host << ", max_request_rows "
                << max_rows);
  ModelConfig m;
  m.seq_len = 32;
  m.d_model = 32;
  m.n_layers = 3;
  m.n_heads = 4;
  m.d_ff = 24;
  m.d_ff_dense = 40;
  m.n_experts = 6;
  m.top_k = 2;
  m.moe_layers = "0,2";  // a dense layer in between
  TrainConfig t;
  t.expert_seed = 21;
  t.grad_clip = 0.1;
  t.warmup_steps = 0;
  t.expert_lr_scale = 2.5;  // hosts step their experts with it (ExpertHost::step_end)
  const uint32_t n = 3;
  torch::manual_seed(4);
  auto tokens = torch::randint(0, 259, {6, 33}, torch::kLong);

  model::Backbone central(m, 8);
  model::ExpertShard all(m, t.expert_seed, [](int, int) { return true; });
  model::LocalDispatcher local_all(all);
  auto out_c = central->forward(tokens, local_all);
  out_c.loss.backward();

  auto& ctx = net::default_context();
  std::vector<net::CurveKeyPair> keys;
  for (uint32_t i = 0; i < n; ++i) keys.push_back(curve ? net::generate_keypair() : net::CurveKeyPair{});
  std::vector<std::unique_ptr<test::HostParty>> parties;
  std::vector<std::unique_ptr<party::ExpertServer>> servers;
  std::vector<proto::PartyEntry> directory;
  std::map<std::string, std::string> key_to_id;
  for (uint32_t i = 0; i < n; ++i) key_to_id[keys[i].public_key] = std::string(1, static_cast<char>('a' + i));
  proto::Limits limits;
  limits.d_model = m.d_model;
  for (uint32_t i = 0; i < n; ++i) {
    const std::string id(1, static_cast<char>('a' + i));
    parties.push_back(std::make_unique<test::HostParty>(m, t, party::Placement::round_robin(m, n, i), i, id));
    parties.back()->host->set_known_parties({"a", "b", "c"});
    net::ServerOptions so;
    so.endpoint = "tcp://127.0.0.1:*";
    if (curve) {
      so.curve = keys[i];
      for (auto& k : keys) so.allowed_client_keys.push_back(k.public_key);
    }
    servers.push_back(std::make_unique<party::ExpertServer>(ctx, so, limits));
    servers.back()->set_parties(key_to_id);
    servers.back()->install(parties.back()->host.get());
    servers.back()->start();
    proto::PartyEntry e;
    e.party_id = id;
    e.index = i;
    e.endpoint = servers.back()->endpoint();
    e.curve_public_key = keys[i].public_key;
    directory.push_back(e);
  }
  party::PeerLinksOptions lo;
  lo.self = 0;
  lo.request_timeout_ms = 20000;
  if (curve) lo.curve = keys[0];
  lo.limits = limits;
  lo.links_per_host = links_per_host;
  party::PeerLinks links(ctx, lo);
  links.update(directory);

  model::Backbone fed(m, 8);
  party::DispatchOptions dopt;
  dopt.self_id = "a";
  dopt.shuffle_seed = 99;
  dopt.max_request_rows = max_rows;
  party::FederatedDispatcher disp(m, *parties[0]->shard, party::Placement::round_robin(m, n, 0), links, dopt);
  disp.begin_step(0);
  model::ForwardResult out_f;
  {
    std::shared_lock<std::shared_mutex> read(parties[0]->mu);
    out_f = fed->forward(tokens, disp);
    out_f.loss.backward();
  }
  CHECK(rel_err(out_f.loss, out_c.loss) < 1e-6);
  CHECK(disp.hosts_called() == std::set<uint32_t>{1, 2});
  if (max_rows > 0) CHECK(disp.stats().requests > 8);  // 2 layers x 2 hosts x 2 experts, each split
  // Wire efficiency: what left the requester is the routed rows (forward) and their gradients
  // (backward), plus expert ids and headers: within 10% of that minimum.
  const double min_sent = static_cast<double>(disp.stats().rows_sent) * m.d_model * 4 * 2;
  INFO("bytes sent " << links.bytes_sent() << ", minimum " << min_sent);
  CHECK(static_cast<double>(links.bytes_sent()) >= min_sent);
  CHECK(static_cast<double>(links.bytes_sent()) < 1.1 * min_sent);
  CHECK(static_cast<double>(links.bytes_received()) >= min_sent);
  CHECK(static_cast<double>(links.bytes_received()) < 1.1 * min_sent);
  for (auto& item : central->named_parameters()) {
    INFO(item.key());
    CHECK(rel_err(fed->named_parameters()[item.key()].grad(), item.value().grad()) < 1e-5);
  }
  for (auto& [name, p] : all.named_expert_params()) {
    int l, e;
    std::string w;
    REQUIRE(model::parse_expert_param(name, l, e, w));
    auto q = find_param(*parties[static_cast<size_t>(e) % n]->shard, name);
    INFO(name);
    REQUIRE(q.grad().defined() == p.grad().defined());
    if (p.grad().defined()) CHECK(rel_err(q.grad(), p.grad()) < 1e-5);
  }

  // One step: the requester clips with the hosts' reported gradient norms.
  std::vector<torch::Tensor> cp = central->parameters();
  for (auto& p : all.parameters()) cp.push_back(p);
  const double norm_c = std::sqrt(model::grad_sq_norm(cp));
  const double norm_f =
      std::sqrt(model::grad_sq_norm(fed->parameters()) +
                model::grad_sq_norm(parties[0]->shard->parameters()) + disp.remote_grad_sq());
  CHECK(norm_f == Approx(norm_c).epsilon(1e-5));
  // The hosts' part on its own: experts a does not host.
  CHECK(disp.remote_grad_sq() ==
        Approx(model::grad_sq_norm(test::remote_expert_params(all, n, 0))).epsilon(1e-4));
  const double lr = model::lr_at(t, 0);
  std::vector<model::NamedParam> cparams, eparams;
  for (auto& it : central->named_parameters()) cparams.push_back({it.key(), it.value()});
  for (auto& [name, p] : all.named_expert_params()) eparams.push_back({name, p});
  model::AdamW(cparams, t).step(lr, model::clip_scale(norm_c, t.grad_clip));
  model::AdamW(eparams, t).step(lr * 2.5, model::clip_scale(norm_c, t.grad_clip));
  std::vector<model::NamedParam> fparams;
  for (auto& it : fed->named_parameters()) fparams.push_back({it.key(), it.value()});
  const double scale = model::clip_scale(norm_f, t.grad_clip);
  model::AdamW(fparams, t).step(lr, scale);
  parties[0]->opt->step(lr * 2.5, scale);  // a's own experts: what its trainer does (train_step)
  proto::StepEnd se;
  se.requester = "a";
  se.step = 0;
  se.clip_scale = scale;
  for (uint32_t h : disp.hosts_called()) links.send(h, se);
  for (uint32_t h : disp.hosts_called()) {
    auto reply = links.wait(h, proto::MsgType::step_end_ack, 0);
    REQUIRE(std::holds_alternative<proto::StepEndAck>(reply));
  }
  for (auto& item : central->named_parameters()) {
    INFO(item.key());
    CHECK(rel_err(fed->named_parameters()[item.key()], item.value()) < 1e-5);
  }
  for (auto& [name, p] : all.named_expert_params()) {
    int l, e;
    std::string w;
    REQUIRE(model::parse_expert_param(name, l, e, w));
    INFO(name);
    CHECK(rel_err(find_param(*parties[static_cast<size_t>(e) % n]->shard, name), p) < 1e-5);
  }
  for (auto& s : servers) s->stop();
}
