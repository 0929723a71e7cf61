// The privacy defences on the backbone and on sent rows (lib/model/privacy.h): the shared
// initialisation is the same for every party, the private one is not; a rotation of the hidden
// space leaves a dense backbone's output unchanged and turns the rows a MoE layer sends; row
// clipping bounds each row's norm; the noise has the configured scale.
#include <catch2/catch.hpp>

#include "audit/model_rows.h"
#include "common/hash.h"
#include "model/compat.h"
#include "model/privacy.h"

using namespace pcmoe;

namespace {

ModelConfig small_model(const std::string& moe_layers) {
  ModelConfig m;
  m.vocab_size = 40;
  m.seq_len = 12;
  m.d_model = 16;
  m.n_layers = 2;
  m.n_heads = 2;
  m.d_ff = 24;
  m.d_ff_dense = 24;
  m.n_experts = 4;
  m.top_k = 2;
  m.moe_layers = moe_layers;
  return m;
}

torch::Tensor tokens(const ModelConfig& m) {
  return torch::randint(0, m.vocab_size, {3, m.seq_len + 1}, torch::kLong);
}

bool same_weights(model::Backbone& a, model::Backbone& b) {
  auto pa = a->named_parameters(), pb = b->named_parameters();
  for (auto& p : pa) {
    if (!torch::equal(p.value(), pb[p.key()])) return false;
  }
  return true;
}

}  // namespace

TEST_CASE("privacy: shared_init gives every party the same backbone, the private seed does not",
          "[unit][privacy]") {
  const ModelConfig m = small_model("all");
  TrainConfig t;
  PrivacyConfig shared;
  shared.shared_init = true;
  auto a = model::initial_backbone(m, t, shared, 11), b = model::initial_backbone(m, t, shared, 12);
  CHECK(same_weights(a, b));
  auto c = model::initial_backbone(m, t, PrivacyConfig{}, 11),
       d = model::initial_backbone(m, t, PrivacyConfig{}, 12);
  CHECK_FALSE(same_weights(c, d));
  PrivacyConfig rotated = shared;
  rotated.rotate_hidden = true;
  auto e = model::initial_backbone(m, t, rotated, 11), f = model::initial_backbone(m, t, rotated, 12);
  CHECK_FALSE(same_weights(e, f));  // the same start, turned by each party's own rotation
}

TEST_CASE("privacy: a rotation keeps a dense backbone's output and turns the rows a MoE layer sends",
          "[unit][privacy]") {
  torch::manual_seed(3);
  const auto r = model::random_rotation(16, 99);
  CHECK(torch::allclose(torch::matmul(r, r.t()), torch::eye(16), 1e-5, 1e-5));

  SECTION("dense: the same loss") {
    const ModelConfig m = small_model("none");
    model::Backbone plain(m, 5), turned(m, 5);
    model::rotate_hidden(turned, r);
    model::ExpertShard experts(m, 1, [](int, int) { return true; });
    model::LocalDispatcher local(experts);
    auto x = tokens(m);
    CHECK(plain->forward(x, local).loss.item<double>() ==
          Approx(turned->forward(x, local).loss.item<double>()).epsilon(1e-5));
  }
  SECTION("MoE: the first MoE layer's rows are the old rows times R") {
    const ModelConfig m = small_model("all");
    model::Backbone plain(m, 5), turned(m, 5);
    model::rotate_hidden(turned, r);
    model::ExpertShard experts(m, 1, [](int, int) { return true; });
    audit::RecordingDispatcher rec_plain(experts, m.n_experts, m.vocab_size);
    audit::RecordingDispatcher rec_turned(experts, m.n_experts, m.vocab_size);
    torch::NoGradGuard no_grad;
    auto x = tokens(m);
    plain->forward(x, rec_plain);
    turned->forward(x, rec_turned);
    auto a = rec_plain.take(), b = rec_turned.take();
    REQUIRE(a.layers.count(0));
    CHECK(torch::equal(a.layers[0].tokens, b.layers[0].tokens));  // the same routing
    CHECK(torch::allclose(torch::matmul(a.layers[0].rows, r), b.layers[0].rows, 1e-4, 1e-5));
    CHECK_FALSE(torch::allclose(a.layers[0].rows, b.layers[0].rows, 1e-2, 1e-2));
  }
  SECTION("a norm that is not uniform is refused") {
    const ModelConfig m = small_model("none");
    model::Backbone b(m, 5);
    for (auto& p : b->named_parameters()) {
      if (p.key() == "norm_f.weight") p.value().data()[0] = 2.0;
    }
    CHECK_THROWS_WITH(model::rotate_hidden(b, r), Catch::Contains("norm_f.weight"));
  }
}

TEST_CASE("privacy: clipped rows have norm <= C; the noise has std sigma * C (or * RMS without a clip)",
          "[unit][privacy]") {
  torch::manual_seed(4);
  auto x = torch::randn({4000, 32}) * 3.0;
  auto c = model::clip_rows(x, 2.0);
  CHECK(c.norm(2, {1}).max().item<double>() <= 2.0 + 1e-5);
  auto small = torch::randn({10, 32}) * 0.01;
  CHECK(torch::allclose(model::clip_rows(small, 2.0), small));  // inside the ball: unchanged
  at::Generator gen = model::make_cpu_generator(7);
  auto noised = model::add_row_noise(c, 2.0, 0.5, gen);
  CHECK((noised - c).std().item<double>() == Approx(1.0).epsilon(0.02));
  auto unit = torch::ones({4000, 32}) * 3.0;  // RMS 3
  CHECK((model::add_row_noise(unit, 0.0, 0.5, gen) - unit).std().item<double>() == Approx(1.5).epsilon(0.02));
  CHECK(torch::equal(model::add_row_noise(c, 2.0, 0.0, gen), c));
}
