// The federated dispatcher and expert hosts, in one process through a loopback link: the same
// loss, gradients and updated parameters as the single-process model (gradient equivalence
// without sockets), privacy of what leaves the party, masking, eval mode, and host error paths.
#include <catch2/catch.hpp>

#include "model/backbone.h"
#include "model/optim.h"
#include "party_test_util.h"
#include "proto/wire_tensor.h"

using namespace pcmoe;
using pcmoe::test::find_param;
using pcmoe::test::rel_err;

namespace {

ModelConfig small_model() {
  ModelConfig c;
  c.seq_len = 16;
  c.d_model = 16;
  c.n_layers = 2;
  c.n_heads = 2;
  c.d_ff = 12;
  c.n_experts = 6;
  c.top_k = 2;
  return c;
}

}  // namespace

TEST_CASE("loopback federation: loss, gradients and one optimizer step equal the single-process model",
          "[unit][party]") {
  ModelConfig m = small_model();
  TrainConfig t;
  t.expert_seed = 9;
  t.grad_clip = 0.05;  // small enough to be active: clipping must agree too
  const uint32_t n = 3;
  // One request per host and layer (0); every expert's rows split over several requests of its
  // own (3 and 5: below any expert's row count; a host's gradient norm then counts from the last
  // of them only); requests holding one or two experts' rows (30): the same numbers each way.
  const int max_rows = GENERATE(0, 3, 5, 30);
  // Hosts' replies with their timeline (the requester picks an expert's counted norm by receipt
  // stamp) and without (the last request sent).
  const bool timelines = GENERATE(true, false);
  INFO("max_request_rows " << max_rows << ", timelines " << timelines);
  auto tokens = torch::randint(0, 259, {4, 17}, torch::kLong);

  // Single process.
  model::Backbone central(m, 5);
  model::ExpertShard all(m, t.expert_seed, [](int, int) { return true; });
  model::LocalDispatcher local_all(all);
  auto out_c = central->forward(tokens, local_all);
  out_c.loss.backward();

  // Federation: party 0 trains with the same backbone weights (shared here on purpose).
  std::vector<std::unique_ptr<test::HostParty>> parties;
  for (uint32_t i = 0; i < n; ++i) {
    auto pl = party::Placement::round_robin(m, n, i);
    parties.push_back(
        std::make_unique<test::HostParty>(m, t, pl, i, std::string(1, static_cast<char>('a' + i))));
  }
  test::LoopbackLink link("a", {{1, parties[1]->host.get()}, {2, parties[2]->host.get()}});
  link.timelines = timelines;
  model::Backbone fed(m, 5);
  party::DispatchOptions dopt;
  dopt.self_id = "a";
  dopt.shuffle_seed = 77;
  dopt.max_request_rows = max_rows;
  party::FederatedDispatcher disp(m, *parties[0]->shard, party::Placement::round_robin(m, n, 0), link, dopt);
  disp.begin_step(0);
  auto out_f = fed->forward(tokens, disp);
  out_f.loss.backward();
  // 2 MoE layers x 2 remote hosts: one request each without a limit, more with one.
  if (max_rows == 0) CHECK(disp.stats().requests == 4);
  // Each host holds 2 experts per layer: more than 8 requests when experts' rows are split.
  if (max_rows == 3 || max_rows == 5) CHECK(disp.stats().requests > 8);
  if (max_rows == 30) CHECK(disp.stats().requests > 4);

  CHECK(out_f.loss.item<double>() == Approx(out_c.loss.item<double>()).epsilon(1e-6));
  CHECK(disp.hosts_called() == std::set<uint32_t>{1, 2});
  auto pc = central->named_parameters();
  auto pf = fed->named_parameters();
  for (auto& item : pc) {
    INFO(item.key());
    CHECK(rel_err(pf[item.key()].grad(), item.value().grad()) < 1e-5);
  }
  double sq_fed = model::grad_sq_norm(fed->parameters()) +
                  model::grad_sq_norm(parties[0]->shard->parameters()) + disp.remote_grad_sq();
  std::vector<torch::Tensor> all_params = central->parameters();
  for (auto& p : all.parameters()) all_params.push_back(p);
  double sq_central = model::grad_sq_norm(all_params);
  CHECK(sq_fed == Approx(sq_central).epsilon(1e-5));
  // The hosts' part on its own (the backbone's dominates the sum above): the squared norm of the
  // gradients of every expert party 0 does not host.
  CHECK(disp.remote_grad_sq() ==
        Approx(model::grad_sq_norm(test::remote_expert_params(all, n, 0))).epsilon(1e-4));
  for (auto& [name, p] : all.named_expert_params()) {
    int l, e;
    std::string w;
    REQUIRE(model::parse_expert_param(name, l, e, w));
    auto q = find_param(*parties[static_cast<size_t>(e) % n]->shard, name);
    REQUIRE(q.defined());
    INFO(name);
    REQUIRE(q.grad().defined() == p.grad().defined());
    if (p.grad().defined()) CHECK(rel_err(q.grad(), p.grad()) < 1e-5);
  }

  // One optimizer step on both sides, at the schedule's step-0 learning rate (hosts compute the
  // LR from the shared schedule themselves).
  const double lr = model::lr_at(t, 0);
  std::vector<model::NamedParam> cparams;
  for (auto& it : central->named_parameters()) cparams.push_back({it.key(), it.value()});
  for (auto& [name, p] : all.named_expert_params()) cparams.push_back({name, p});
  model::AdamW copt(cparams, t);
  copt.step(lr, model::clip_scale(std::sqrt(sq_central), t.grad_clip));
  std::vector<model::NamedParam> fparams;
  for (auto& it : fed->named_parameters()) fparams.push_back({it.key(), it.value()});
  model::AdamW fopt(fparams, t);
  const double scale = model::clip_scale(std::sqrt(sq_fed), t.grad_clip);
  CHECK(scale < 1.0);
  fopt.step(lr, scale);
  parties[0]->opt->step(lr, scale);
  for (uint32_t h : disp.hosts_called()) {
    proto::StepEnd se;
    se.requester = "a";
    se.step = 0;
    se.clip_scale = scale;
    auto reply = parties[h]->host->handle("a", se);
    REQUIRE(std::holds_alternative<proto::StepEndAck>(reply));
    CHECK(std::get<proto::StepEndAck>(reply).experts_stepped > 0);
  }
  for (auto& item : central->named_parameters()) {
    INFO(item.key());
    CHECK(rel_err(fed->named_parameters()[item.key()], item.value()) < 1e-6);
  }
  for (auto& [name, p] : all.named_expert_params()) {
    int l, e;
    std::string w;
    REQUIRE(model::parse_expert_param(name, l, e, w));
    INFO(name);
    CHECK(rel_err(find_param(*parties[static_cast<size_t>(e) % n]->shard, name), p) < 1e-6);
  }
}
