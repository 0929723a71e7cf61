// train::train_step, the one training step of every trainer: it equals forward + backward +
// global-norm clipping + AdamW written out by hand; with hooks, the remote squared norm enters
// the clip scale the hosts commit with; and a step that fails before its commit is acknowledged
// (a host refuses, a non-finite loss) is aborted through the hooks and changes no parameter.
#include <catch2/catch.hpp>

#include "common/error.h"
#include "model/backbone.h"
#include "model/expert.h"
#include "model/optim.h"
#include "train/step.h"

using namespace pcmoe;

namespace {

ModelConfig tiny_model() {
  ModelConfig c;
  c.seq_len = 16;
  c.d_model = 16;
  c.n_layers = 2;
  c.n_heads = 2;
  c.d_ff = 12;
  c.n_experts = 4;
  c.top_k = 2;
  return c;
}

// A backbone, all experts and the optimizers of a step (experts apart, as on a party).
struct Model {
  model::Backbone backbone;
  model::ExpertShard experts;
  model::LocalDispatcher dispatcher;
  std::unique_ptr<model::AdamW> backbone_opt, experts_opt;

  Model(const ModelConfig& m, const TrainConfig& t)
      : backbone(m, 5), experts(m, t.expert_seed, [](int, int) { return true; }), dispatcher(experts) {
    std::vector<model::NamedParam> bp, ep;
    for (auto& p : backbone->named_parameters()) bp.push_back({p.key(), p.value()});
    for (auto& [n, p] : experts.named_expert_params()) ep.push_back({n, p});
    backbone_opt = std::make_unique<model::AdamW>(bp, t);
    experts_opt = std::make_unique<model::AdamW>(ep, t);
  }
  train::StepModel step_model() {
    return {&backbone, &dispatcher, backbone_opt.get(), experts_opt.get(), nullptr, torch::kCPU, false};
  }
  std::vector<torch::Tensor> params() {
    auto all = backbone_opt->tensors();
    for (auto& t : experts_opt->tensors()) all.push_back(t);
    return all;
  }
  std::vector<torch::Tensor> snapshot() {
    std::vector<torch::Tensor> out;
    for (auto& p : params()) out.push_back(p.detach().clone());
    return out;
  }
};

bool same(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!torch::equal(a[i], b[i])) return false;
  }
  return true;
}

class FakeHooks : public train::StepHooks {
 public:
  double remote_sq = 0;
  bool refuse = false;
  std::vector<double> commits;
  std::vector<std::string> aborts;
  double remote_grad_sq() const override { return remote_sq; }
  void commit(int64_t, double clip_scale) override {
    if (refuse) throw TransportError("host party 1 refused step_end");
    commits.push_back(clip_scale);
  }
  void abort(int64_t, const std::string& why) override { aborts.push_back(why); }
};

}  // namespace

TEST_CASE("train_step equals forward, backward, clipping and AdamW written out by hand", "[unit][train]") {
  ModelConfig m = tiny_model();
  TrainConfig t;
  t.grad_clip = 0.05;       // active
  t.expert_lr_scale = 3.0;  // the experts step with three times the schedule's rate
  auto tokens = torch::randint(0, 259, {4, 17}, torch::kLong);
  Model a(m, t), b(m, t);
  const train::StepResult r = train::train_step(a.step_model(), tokens, 3, t);

  auto out = b.backbone->forward(tokens, b.dispatcher);
  out.loss.backward();
  const double sq =
      model::grad_sq_norm(b.backbone_opt->tensors()) + model::grad_sq_norm(b.experts_opt->tensors());
  const double scale = model::clip_scale(std::sqrt(sq), t.grad_clip);
  REQUIRE(scale < 1.0);
  b.backbone_opt->step(model::lr_at(t, 3), scale);
  b.experts_opt->step(model::lr_at(t, 3) * 3.0, scale);

  CHECK(r.loss == Approx(out.ce_loss.item<double>()).epsilon(1e-12));
  CHECK(r.aux_loss == Approx(out.aux_loss.item<double>()).epsilon(1e-12));
  CHECK(r.grad_norm == Approx(std::sqrt(sq)).epsilon(1e-12));
  CHECK(r.clip_scale == Approx(scale).epsilon(1e-12));
  CHECK(r.lr == model::lr_at(t, 3));
  CHECK(r.tokens == out.tokens);
  CHECK(r.stats.size() == 2);
  CHECK(r.forward_ms >= 0);
  CHECK(same(a.snapshot(), b.snapshot()));
  JsonObject rec;
  r.add_to(rec);
  CHECK_THAT(rec.str(), Catch::Contains("\"grad_norm\":") && Catch::Contains("\"forward_ms\":"));
}

TEST_CASE("train_step with hooks: the remote norm enters the clip scale the hosts commit with",
          "[unit][train]") {
  ModelConfig m = tiny_model();
  TrainConfig t;
  t.grad_clip = 1.0;
  auto tokens = torch::randint(0, 259, {4, 17}, torch::kLong);
  Model a(m, t);
  FakeHooks hooks;
  hooks.remote_sq = 400.0;  // a norm of 20 held by the hosts
  const train::StepResult r = train::train_step(a.step_model(), tokens, 0, t, {}, &hooks);
  REQUIRE(hooks.commits.size() == 1);
  CHECK(hooks.aborts.empty());
  CHECK(r.grad_norm > 20.0);
  CHECK(hooks.commits[0] == Approx(model::clip_scale(r.grad_norm, 1.0)));
  CHECK(hooks.commits[0] < 0.05);
}

TEST_CASE("train_step: a refused commit or a non-finite loss aborts the step and changes nothing",
          "[unit][train]") {
  ModelConfig m = tiny_model();
  TrainConfig t;
  auto tokens = torch::randint(0, 259, {4, 17}, torch::kLong);
  Model a(m, t);
  FakeHooks hooks;
  SECTION("a host refuses step_end") {
    hooks.refuse = true;
    const auto before = a.snapshot();
    CHECK_THROWS_AS(train::train_step(a.step_model(), tokens, 0, t, {}, &hooks), TransportError);
    CHECK(same(a.snapshot(), before));
    REQUIRE(hooks.aborts.size() == 1);
    CHECK_THAT(hooks.aborts[0], Catch::Contains("refused step_end"));
  }
  SECTION("the loss is not finite") {
    {
      torch::NoGradGuard no_grad;
      a.backbone->named_parameters().begin()->value().fill_(std::numeric_limits<float>::quiet_NaN());
    }
    const auto before = a.snapshot();
    CHECK_THROWS_AS(train::train_step(a.step_model(), tokens, 0, t, {}, &hooks), ModelError);
    CHECK(hooks.commits.empty());
    REQUIRE(hooks.aborts.size() == 1);
    CHECK_THAT(hooks.aborts[0], Catch::Contains("non-finite"));
    // NaN != NaN: compare the bytes.
    const auto after = a.snapshot();
    for (size_t i = 0; i < after.size(); ++i) {
      CHECK(std::memcmp(after[i].data_ptr(), before[i].data_ptr(), after[i].nbytes()) == 0);
    }
  }
  for (auto& p : a.params()) CHECK_FALSE(p.grad().defined());  // cleared for the next step
}
