// Router, grouped MoE layer and backbone gradients against references: hand-computed router
// values, a naive per-token loop (forward and gradients), and finite differences in float64.
#include <catch2/catch.hpp>

#include <cmath>

#include "model/backbone.h"
#include "model/expert.h"
#include "model/moe.h"
#include "model/router.h"

using namespace pcmoe;
using namespace pcmoe::model;

namespace {

ModelConfig tiny_config() {
  ModelConfig c;
  c.vocab_size = 264;
  c.seq_len = 16;
  c.d_model = 16;
  c.n_layers = 2;
  c.n_heads = 2;
  c.d_ff = 12;
  c.d_ff_dense = 20;
  c.n_experts = 4;
  c.top_k = 2;
  return c;
}

double rel_err(const torch::Tensor& a, const torch::Tensor& b) {
  auto d = (a.to(torch::kFloat64) - b.to(torch::kFloat64)).norm().item<double>();
  auto n = b.to(torch::kFloat64).norm().item<double>();
  return d / std::max(n, 1e-30);
}

}  // namespace

TEST_CASE("router: hand-computed top-1 routing, gates and losses", "[unit][model]") {
  ModelConfig c = tiny_config();
  c.n_experts = 3;
  c.top_k = 1;
  auto logits = torch::tensor({1.0, 2.0, 0.0, 0.0, 0.0, 3.0}, torch::kFloat64).view({2, 3});
  auto r = route(logits, c, {}, {});
  CHECK(r.expert_idx[0][0].item<int64_t>() == 1);
  CHECK(r.expert_idx[1][0].item<int64_t>() == 2);
  // softmax([1,2,0]) = e^2/(e+e^2+1)
  double e = std::exp(1.0);
  double p01 = e * e / (e + e * e + 1);
  double p12 = std::exp(3.0) / (2 + std::exp(3.0));
  CHECK(r.gates[0][0].item<double>() == Approx(p01).epsilon(1e-12));
  CHECK(r.gates[1][0].item<double>() == Approx(p12).epsilon(1e-12));
  // aux = m * sum_e f_e P_e with f = [0, 1/2, 1/2], P_e = mean probs.
  auto p = r.probs.mean(0);
  double aux = 3 * (0.5 * p[1].item<double>() + 0.5 * p[2].item<double>());
  CHECK(r.aux_loss.item<double>() == Approx(aux).epsilon(1e-12));
  double lse0 = std::log(e + e * e + 1), lse1 = std::log(2 + std::exp(3.0));
  CHECK(r.z_loss.item<double>() == Approx((lse0 * lse0 + lse1 * lse1) / 2).epsilon(1e-12));
}

TEST_CASE("router: unavailable experts are never selected; normalised top-k gates sum to 1",
          "[unit][model]") {
  ModelConfig c = tiny_config();
  c.router.normalize_topk = true;
  torch::manual_seed(3);
  auto logits = torch::randn({64, 4}, torch::kFloat64);
  auto avail = torch::tensor({true, false, true, true});
  auto r = route(logits, c, avail, {});
  CHECK((r.expert_idx == 1).sum().item<int64_t>() == 0);
  CHECK(r.probs.select(1, 1).abs().max().item<double>() == 0.0);
  CHECK(rel_err(r.gates.sum(1), torch::ones({64}, torch::kFloat64)) < 1e-12);
}

TEST_CASE("router: a selection bias changes choices but not gate values", "[unit][model]") {
  ModelConfig c = tiny_config();
  c.top_k = 1;
  auto logits = torch::tensor({2.0, 1.0, 0.0, 0.0}, torch::kFloat64).view({1, 4});
  auto bias = torch::tensor({0.0, 0.0, 0.0, 1.0}, torch::kFloat64);
  auto r = route(logits, c, {}, bias);
  CHECK(r.expert_idx[0][0].item<int64_t>() == 3);
  CHECK(r.gates[0][0].item<double>() == Approx(torch::softmax(logits, -1)[0][3].item<double>()));
}

TEST_CASE("router: capacity drops the overflow in token order", "[unit][model]") {
  ModelConfig c = tiny_config();
  c.n_experts = 2;
  c.top_k = 1;
  c.router.capacity_factor = 1.0;  // capacity = ceil(1 * 4 * 1 / 2) = 2
  auto logits = torch::tensor({5.0, 0.0, 5.0, 0.0, 5.0, 0.0, 0.0, 5.0}, torch::kFloat64).view({4, 2});
  auto r = route(logits, c, {}, {});
  REQUIRE(r.keep.defined());
  auto keep = r.keep.view({-1}).to(torch::kLong);
  CHECK(std::vector<int64_t>(keep.data_ptr<int64_t>(), keep.data_ptr<int64_t>() + 4) ==
        std::vector<int64_t>{1, 1, 0, 1});  // the third token bound for e0 is over capacity
  CHECK(r.gates[2][0].item<double>() == 0.0);
}

TEST_CASE("grouped MoE layer equals a naive per-token loop, forward and gradients", "[unit][model]") {
  ModelConfig c = tiny_config();
  torch::manual_seed(7);
  ExpertShard shard(c, 11, [](int, int) { return true; });
  shard.to(torch::kFloat64);
  LocalDispatcher local(shard);
  auto x = torch::randn({37, c.d_model}, torch::kFloat64).requires_grad_(true);
  auto logits = torch::randn({37, c.n_experts}, torch::kFloat64).requires_grad_(true);
  auto r = route(logits, c, {}, {});
  LayerStats stats;
  auto y = moe_combine(x, r, 0, c.n_experts, local, &stats);
  auto upstream = torch::randn_like(y);
  auto grads = torch::autograd::grad({(y * upstream).sum()}, {x, logits}, {}, true);
  std::vector<torch::Tensor> pgrads;
  for (auto& [name, p] : shard.named_expert_params())
    pgrads.push_back(torch::autograd::grad({(y * upstream).sum()}, {p}, {}, true, false, true)[0]);

  // Reference: loop over tokens and their k choices.
  std::vector<torch::Tensor> rows;
  for (int64_t t = 0; t < 37; ++t) {
    auto acc = torch::zeros({c.d_model}, torch::kFloat64);
    for (int j = 0; j < c.top_k; ++j) {
      int e = static_cast<int>(r.expert_idx[t][j].item<int64_t>());
      acc = acc + r.gates[t][j] * shard.get(0, e)->forward(x[t].unsqueeze(0)).squeeze(0);
    }
    rows.push_back(acc);
  }
  auto y_ref = torch::stack(rows);
  CHECK(rel_err(y, y_ref) < 1e-12);
  auto grads_ref = torch::autograd::grad({(y_ref * upstream).sum()}, {x, logits}, {}, true);
  CHECK(rel_err(grads[0], grads_ref[0]) < 1e-12);
  CHECK(rel_err(grads[1], grads_ref[1]) < 1e-12);
  size_t i = 0;
  for (auto& [name, p] : shard.named_expert_params()) {
    auto ref = torch::autograd::grad({(y_ref * upstream).sum()}, {p}, {}, true, false, true)[0];
    if (ref.defined() && pgrads[i].defined()) CHECK(rel_err(pgrads[i], ref) < 1e-12);
    CHECK(ref.defined() == pgrads[i].defined());
    ++i;
  }
  int64_t total = 0;
  for (auto n : stats.counts) total += n;
  CHECK(total == 37 * c.top_k);
}

TEST_CASE("ExpertShard::run returns rows in input order and rejects foreign experts", "[unit][model]") {
  ModelConfig c = tiny_config();
  ExpertShard all(c, 5, [](int, int) { return true; });
  ExpertShard odd(c, 5, [](int, int e) { return e % 2 == 1; });
  torch::NoGradGuard ng;
  auto x = torch::randn({9, c.d_model});
  auto ids = torch::tensor({3, 1, 1, 3, 1, 3, 3, 1, 1}, torch::kInt32);
  auto y = odd.run(1, x, ids);
  for (int i = 0; i < 9; ++i) {
    int e = ids[i].item<int>();
    CHECK(rel_err(y[i], all.get(1, e)->forward(x[i].unsqueeze(0)).squeeze(0)) < 1e-6);
  }
  CHECK_THROWS_AS(odd.run(1, x, torch::tensor({0, 1, 1, 3, 1, 3, 3, 1, 1})), ModelError);
  CHECK_THROWS_AS(odd.run(1, x, torch::tensor({9, 1, 1, 3, 1, 3, 3, 1, 1})), ModelError);
}

TEST_CASE("experts initialise identically in any process from (seed, layer, expert)", "[unit][model]") {
  ModelConfig c = tiny_config();
  ExpertShard a(c, 99, [](int, int e) { return e == 2; });
  ExpertShard b(c, 99, [](int, int) { return true; });
  auto pa = a.named_expert_params();
  for (auto& [name, t] : pa) {
    bool found = false;
    for (auto& [nb, tb] : b.named_expert_params()) {
      if (nb == name) {
        CHECK(torch::equal(t, tb));
        found = true;
      }
    }
    CHECK(found);
  }
  int l = -1, e = -1;
  std::string p;
  CHECK(parse_expert_param("l1.e2.w3", l, e, p));
  CHECK((l == 1 && e == 2 && p == "w3"));
  CHECK_FALSE(parse_expert_param("l1.e2.w4", l, e, p));
  CHECK_FALSE(parse_expert_param("blocks.0.attn", l, e, p));
}

TEST_CASE("backbone gradients match finite differences (float64)", "[unit][model]") {
  for (std::string act : {"swiglu", "gelu"}) {
    ModelConfig c = tiny_config();
    c.activation = act;
    c.moe_layers = "1";
    c.norm = act == "gelu" ? "layernorm" : "rmsnorm";
    c.pos_encoding = act == "gelu" ? "learned" : "rope";
    c.tie_embeddings = act == "gelu";
    Backbone bb(c, 1234);
    ExpertShard shard(c, 77, [](int, int) { return true; });
    bb->to(torch::kFloat64);
    shard.to(torch::kFloat64);
    LocalDispatcher local(shard);
    torch::manual_seed(1);
    auto tokens = torch::randint(0, 259, {2, 9}, torch::kLong);
    auto out = bb->forward(tokens, local);
    out.loss.backward();

    std::vector<torch::Tensor> params;
    for (auto& p : bb->parameters()) params.push_back(p);
    for (auto& p : shard.parameters()) params.push_back(p);
    std::vector<torch::Tensor> dirs;
    double analytic = 0;
    for (auto& p : params) {
      auto d = torch::randn_like(p);
      dirs.push_back(d);
      if (p.grad().defined()) analytic += (p.grad() * d).sum().item<double>();
    }
    auto loss_at = [&](double h) {
      torch::NoGradGuard ng;
      for (size_t i = 0; i < params.size(); ++i) params[i].add_(dirs[i] * h);
      double l = bb->forward(tokens, local).loss.item<double>();
      for (size_t i = 0; i < params.size(); ++i) params[i].sub_(dirs[i] * h);
      return l;
    };
    const double h = 1e-6;
    double numeric = (loss_at(h) - loss_at(-h)) / (2 * h);
    INFO(act << ": analytic " << analytic << " numeric " << numeric);
    CHECK(std::fabs(analytic - numeric) <= 1e-6 * std::max(1.0, std::fabs(analytic)));
  }
}

TEST_CASE("backbone forward: shapes, stats and the seed decides the weights", "[unit][model]") {
  ModelConfig c = tiny_config();
  Backbone a(c, 1), b(c, 1), d(c, 2);
  CHECK(torch::equal(a->parameters()[0], b->parameters()[0]));
  CHECK_FALSE(torch::equal(a->parameters()[0], d->parameters()[0]));
  ExpertShard shard(c, 3, [](int, int) { return true; });
  LocalDispatcher local(shard);
  auto tokens = torch::randint(0, 259, {3, 17}, torch::kLong);
  auto out = a->forward(tokens, local);
  CHECK(out.tokens == 3 * 16);
  REQUIRE(out.stats.size() == 2);
  int64_t sum = 0;
  for (auto n : out.stats[0].counts) sum += n;
  CHECK(sum == 3 * 16 * c.top_k);
  CHECK(out.ce_loss.item<double>() == Approx(std::log(264.0)).epsilon(0.05));
  CHECK_THROWS_AS(a->forward(torch::randint(0, 259, {1, 40}, torch::kLong), local), ModelError);
}
