// lib/party/wire on the CPU: fp8 rows leave as codes with one scale per row and come back within
// the format's rounding error (fp8e4m3: relative error per row <= 2^-4; fp8e5m2: <= 2^-3); rows
// holding NaN/Inf are flagged; the reply stager places out-of-order replies (fp8 and others) at
// their rows; and a loopback federation step with fp8 wire stays close to the single process.
#include <catch2/catch.hpp>

#include "model/backbone.h"
#include "party/wire.h"
#include "party_test_util.h"
#include "proto/wire_tensor.h"

using namespace pcmoe;
using pcmoe::test::rel_err;

namespace {

torch::Tensor rows_of_many_scales(int64_t rows, int64_t cols) {
  auto x = torch::randn({rows, cols});
  auto mag = torch::pow(10.0, torch::arange(rows).to(torch::kFloat32).remainder(7) - 3);  // 1e-3 .. 1e3
  return x * mag.unsqueeze(1);
}

double max_row_rel_err(const torch::Tensor& a, const torch::Tensor& b) {
  auto num = (a - b).norm(2, 1);
  auto den = b.norm(2, 1).clamp_min(1e-30);
  return (num / den).max().item<double>();
}

}  // namespace

TEST_CASE("fp8 wire rows round-trip within the format's rounding error, per row", "[unit][party]") {
  auto x = rows_of_many_scales(40, 64);
  for (DType d : {DType::f8e4m3, DType::f8e5m2}) {
    INFO(dtype_name(d));
    auto w = party::to_wire(x, d);
    CHECK(w.dtype == d);
    CHECK(w.scale_block == 64);
    CHECK(w.data.size == 40 * 64);
    CHECK(w.scales.size == 40 * 4);
    CHECK_FALSE(party::wire_not_finite(w));
    auto back = party::from_wire(w, torch::kCPU, torch::kFloat32);
    CHECK(max_row_rel_err(back, x) < (d == DType::f8e4m3 ? 0.0625 : 0.125));
    // The codes survive the codec (what the host decodes is what was sent).
    auto again = party::to_wire(back, d);
    CHECK(std::memcmp(again.data.data, w.data.data, w.data.size) == 0);
  }
  CHECK(party::resolve_wire_dtype("fp8", torch::kCPU) == DType::f8e4m3);
  CHECK(party::resolve_wire_dtype("fp8e5m2", torch::kCPU) == DType::f8e5m2);
  CHECK_THROWS_AS(party::resolve_wire_dtype("fp4", torch::kCPU), ConfigError);
}

TEST_CASE("fp8 rows holding NaN or Inf are flagged, not sent as numbers", "[unit][party]") {
  auto x = torch::randn({4, 8});
  x[2][3] = std::numeric_limits<float>::infinity();
  auto w = party::to_wire(x, DType::f8e4m3);
  CHECK(party::wire_not_finite(w));
  x[2][3] = std::nanf("");
  CHECK(party::wire_not_finite(party::to_wire(x, DType::f8e5m2)));
  CHECK(party::wire_not_finite(party::to_wire(x, DType::bf16)));
  x[2][3] = 1.0f;
  CHECK_FALSE(party::wire_not_finite(party::to_wire(x, DType::f8e4m3)));
}

TEST_CASE("the reply stager places replies at their rows, in any order and any dtype", "[unit][party]") {
  auto y = torch::randn({10, 8});
  for (DType d : {DType::f32, DType::bf16, DType::f8e4m3}) {
    INFO(dtype_name(d));
    party::ReplyStager st(10, 8, torch::kCPU, torch::kFloat32, d);
    auto h = party::host_copy(y, d);
    st.add(h.wrap(6, 4), 6);  // the last reply first
    st.add(h.wrap(0, 2), 0);
    st.add(party::to_wire(y.narrow(0, 2, 4), DType::f32), 2);  // another dtype in the middle
    auto out = st.finish();
    const double tol = d == DType::f32 ? 0 : (d == DType::bf16 ? 1e-2 : 0.07);
    CHECK(rel_err(out.narrow(0, 0, 2), y.narrow(0, 0, 2)) <= tol);
    CHECK(rel_err(out.narrow(0, 2, 4), y.narrow(0, 2, 4)) == 0);
    CHECK(rel_err(out.narrow(0, 6, 4), y.narrow(0, 6, 4)) <= tol);
  }
  party::ReplyStager st(4, 8, torch::kCPU, torch::kFloat32, DType::f32);
  st.add(party::to_wire(y.narrow(0, 0, 2), DType::f32), 0);
  CHECK_THROWS(st.finish());                                               // rows missing
  CHECK_THROWS(st.add(party::to_wire(y.narrow(0, 0, 3), DType::f32), 2));  // beyond the end
}

TEST_CASE("loopback federation with fp8 wire: loss and gradients close to the single process",
          "[unit][party]") {
  ModelConfig m;
  m.seq_len = 16;
  m.d_model = 32;
  m.n_layers = 2;
  m.n_heads = 2;
  m.d_ff = 24;
  m.n_experts = 6;
  m.top_k = 2;
  TrainConfig t;
  const uint32_t n = 3;
  auto tokens = torch::randint(0, 259, {4, 17}, torch::kLong);
  model::Backbone central(m, 5);
  model::ExpertShard all(m, t.expert_seed, [](int, int) { return true; });
  model::LocalDispatcher local_all(all);
  auto out_c = central->forward(tokens, local_all);
  out_c.loss.backward();
  std::vector<std::unique_ptr<test::HostParty>> parties;
  for (uint32_t i = 0; i < n; ++i) {
    parties.push_back(std::make_unique<test::HostParty>(m, t, party::Placement::round_robin(m, n, i), i,
                                                        std::string(1, static_cast<char>('a' + i))));
  }
  test::LoopbackLink link("a", {{1, parties[1]->host.get()}, {2, parties[2]->host.get()}});
  model::Backbone fed(m, 5);
  party::DispatchOptions dopt;
  dopt.self_id = "a";
  dopt.shuffle_seed = 77;
  dopt.wire_dtype = GENERATE(DType::f8e4m3, DType::f8e5m2);
  INFO(dtype_name(dopt.wire_dtype));
  party::FederatedDispatcher disp(m, *parties[0]->shard, party::Placement::round_robin(m, n, 0), link, dopt);
  disp.begin_step(0);
  auto out_f = fed->forward(tokens, disp);
  out_f.loss.backward();
  CHECK(disp.stats().requests == 4);
  CHECK(out_f.loss.item<double>() == Approx(out_c.loss.item<double>()).epsilon(2e-3));
  auto pc = central->named_parameters();
  auto pf = fed->named_parameters();
  for (auto& item : pc) {
    INFO(item.key());
    CHECK(rel_err(pf[item.key()].grad(), item.value().grad()) < 0.1);
  }
  // The hosts' timelines came back with every reply (their stamps: this process's clock).
  CHECK(disp.stats().remote_forward.requests == 4);
  CHECK(disp.stats().remote_backward.requests == 4);
}
