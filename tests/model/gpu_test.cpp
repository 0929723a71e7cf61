// GPU tests (label gpu; run on the H200 by scripts/gpu-run.sh): the model on CUDA against the
// CPU reference, and the federated dispatcher + expert hosts on CUDA against the single-process
// model on CUDA in fp32 (tolerance 1e-5) and bf16 autocast (tolerance stated below).
#include <catch2/catch.hpp>

#include "model/backbone.h"
#include "model/compat.h"
#include "party/party_test_util.h"

using namespace pcmoe;

namespace {

double rel_err(const torch::Tensor& a, const torch::Tensor& b) {
  double d = (a.to(torch::kCPU, torch::kFloat64) - b.to(torch::kCPU, torch::kFloat64)).norm().item<double>();
  return d / std::max(b.to(torch::kCPU, torch::kFloat64).norm().item<double>(), 1e-30);
}

ModelConfig gpu_model() {
  ModelConfig m;
  m.seq_len = 64;
  m.d_model = 64;
  m.n_layers = 2;
  m.n_heads = 4;
  m.d_ff = 96;
  m.n_experts = 6;
  m.top_k = 2;
  return m;
}

}  // namespace

TEST_CASE("CUDA forward and backward match the CPU (fp32)", "[gpu]") {
  if (!torch::cuda::is_available()) {
    FAIL("no CUDA device: run the gpu label on the GPU machine (scripts/gpu-run.sh)");
  }
  const torch::Device cuda(torch::kCUDA, 0);
  ModelConfig m = gpu_model();
  model::Backbone cpu_bb(m, 3), gpu_bb(m, 3);
  model::ExpertShard cpu_ex(m, 4, [](int, int) { return true; }), gpu_ex(m, 4, [](int, int) { return true; });
  gpu_bb->to(cuda);
  gpu_ex.to(cuda);
  model::LocalDispatcher dc(cpu_ex), dg(gpu_ex);
  auto tokens = torch::randint(0, 259, {4, 65}, torch::kLong);
  auto oc = cpu_bb->forward(tokens, dc);
  auto og = gpu_bb->forward(tokens.to(cuda), dg);
  oc.loss.backward();
  og.loss.backward();
  CHECK(rel_err(og.loss, oc.loss) < 1e-5);
  auto pc = cpu_bb->named_parameters();
  for (auto& item : gpu_bb->named_parameters()) {
    INFO(item.key());
    CHECK(rel_err(item.value().grad(), pc[item.key()].grad()) < 1e-4);
  }
}

TEST_CASE("federation on CUDA equals the single-process model on CUDA (fp32 and bf16)", "[gpu]") {
  if (!torch::cuda::is_available()) FAIL("no CUDA device");
  const torch::Device cuda(torch::kCUDA, 0);
  for (bool bf16 : {false, true}) {
    // bf16 autocast: both sides round the same matmuls to bf16, but the federation's rows travel
    // as bf16 on the wire and rows are regrouped across hosts, so results differ by bf16 rounding.
    const double tol = bf16 ? 3e-2 : 1e-5;
    INFO((bf16 ? "bf16" : "fp32") << " tolerance " << tol);
    ModelConfig m = gpu_model();
    TrainConfig t;
    t.expert_seed = 5;
    t.dtype = bf16 ? "bf16" : "fp32";
    const uint32_t n = 3;
    auto tokens = torch::randint(0, 259, {4, 65}, torch::kLong).to(cuda);
    model::Backbone central(m, 7);
    model::ExpertShard all(m, t.expert_seed, [](int, int) { return true; });
    central->to(cuda);
    all.to(cuda);
    model::LocalDispatcher local(all);
    model::ForwardResult oc;
    {
      model::AutocastGuard ac(bf16, cuda);
      oc = central->forward(tokens, local);
    }
    oc.loss.backward();

    std::vector<std::unique_ptr<test::HostParty>> parties;
    for (uint32_t i = 0; i < n; ++i) {
      parties.push_back(std::make_unique<test::HostParty>(m, t, party::Placement::round_robin(m, n, i), i,
                                                          std::string(1, static_cast<char>('a' + i))));
      parties.back()->shard->to(cuda);
    }
    // Hosts compute on CUDA with the same autocast setting.
    for (uint32_t i = 0; i < n; ++i) {
      party::HostOptions ho;
      ho.self_id = std::string(1, static_cast<char>('a' + i));
      ho.device = cuda;
      ho.bf16 = bf16;
      parties[i]->host = std::make_unique<party::ExpertHost>(m, t, *parties[i]->shard, *parties[i]->opt, parties[i]->mu, ho);
    }
    test::LoopbackLink link("a", {{1, parties[1]->host.get()}, {2, parties[2]->host.get()}});
    model::Backbone fed(m, 7);
    fed->to(cuda);
    party::DispatchOptions dopt;
    dopt.self_id = "a";
    dopt.device = cuda;
    dopt.wire_dtype = bf16 ? DType::bf16 : DType::f32;
    party::FederatedDispatcher disp(m, *parties[0]->shard, party::Placement::round_robin(m, n, 0), link, dopt);
    disp.begin_step(0);
    model::ForwardResult of;
    {
      model::AutocastGuard ac(bf16, cuda);
      of = fed->forward(tokens, disp);
    }
    of.loss.backward();
    CHECK(rel_err(of.loss, oc.loss) < tol);
    auto pc = central->named_parameters();
    for (auto& item : fed->named_parameters()) {
      INFO(item.key());
      CHECK(rel_err(item.value().grad(), pc[item.key()].grad()) < (bf16 ? 0.1 : 1e-5));
    }
  }
}

TEST_CASE("grouped-GEMM experts equal the per-expert loop (bf16 autocast, forward and gradients)", "[gpu]") {
  if (!torch::cuda::is_available()) FAIL("no CUDA device");
  const torch::Device cuda(torch::kCUDA, 0);
  if (!model::grouped_mm_available(cuda)) {
    WARN("grouped GEMM not available in this libtorch: only the loop path runs");
    return;
  }
  ModelConfig m = gpu_model();
  m.n_experts = 8;
  model::ExpertShard shard(m, 12, [](int, int) { return true; });
  shard.to(cuda);
  // Uneven counts, including experts with no rows.
  std::vector<int64_t> counts = {5, 0, 17, 1, 0, 40, 9, 0};
  int64_t rows = 0;
  for (auto c : counts) rows += c;
  auto x = torch::randn({rows, m.d_model}, torch::TensorOptions().device(cuda)).requires_grad_(true);
  model::AutocastGuard ac(true, cuda);
  auto y = shard.run_grouped(0, x, counts);
  REQUIRE(y.defined());
  std::vector<torch::Tensor> parts;
  int64_t off = 0;
  for (int e = 0; e < 8; ++e) {
    if (counts[e] == 0) continue;
    parts.push_back(shard.get(0, e)->forward(x.narrow(0, off, counts[e])));
    off += counts[e];
  }
  auto y_ref = torch::cat(parts).to(torch::kFloat32);
  CHECK(rel_err(y.to(torch::kFloat32), y_ref) < 2e-2);
  auto up = torch::randn_like(y_ref);
  auto g = torch::autograd::grad({(y.to(torch::kFloat32) * up).sum()}, {x, shard.get(0, 5)->w1()}, {}, true);
  auto g_ref = torch::autograd::grad({(y_ref * up).sum()}, {x, shard.get(0, 5)->w1()}, {}, true);
  CHECK(rel_err(g[0], g_ref[0]) < 3e-2);
  CHECK(rel_err(g[1], g_ref[1]) < 3e-2);
}
