// GPU tests (label gpu; run on the H200 by scripts/gpu-run.sh): the model on CUDA against the
// CPU reference, and the federated dispatcher + expert hosts on CUDA against the single-process
// model on CUDA in fp32 (tolerance 1e-5), with streamed requests, in bf16 autocast and with fp8 on
// the wire (tolerances stated below); fp8 codes on CUDA (the kernels of model/fp8_cuda.h, and the
// wire's path, libtorch's float8 with PCMOE_FP8_KERNELS=0) against the CPU codec's.
#include <catch2/catch.hpp>

#include <chrono>

#include "common/fp8.h"
#include "model/backbone.h"
#include "model/compat.h"
#include "model/footprint.h"
#include "model/fp8_cuda.h"
#include "model/optim.h"
#include "party/trainer.h"
#include "party/wire.h"
#include "test_util.h"
#include "train/checkpoint.h"

#include <cstdio>
#include "party/party_test_util.h"

using namespace pcmoe;
using pcmoe::test::find_param;
using pcmoe::test::rel_err;

namespace {

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

TEST_CASE("federation on CUDA equals the single-process model on CUDA (fp32, streamed, bf16, fp8)", "[gpu]") {
  if (!torch::cuda::is_available()) FAIL("no CUDA device");
  const torch::Device cuda(torch::kCUDA, 0);
  struct Case {
    const char* name;
    bool bf16;
    DType wire;
    int max_request_rows;  // > 0: a host's rows of a layer stream in several requests
    double tol, grad_tol;
  };
  // bf16 autocast: both sides round the same matmuls to bf16, but the federation's rows travel
  // as bf16 (or fp8) on the wire and rows are regrouped across hosts, so results differ by that
  // rounding: fp8e4m3 rows carry ~2.5% relative error per row (bench/results/fp8-error-*).
  for (const Case& c : {Case{"fp32", false, DType::f32, 0, 1e-5, 1e-5},
                        Case{"fp32 streamed", false, DType::f32, 40, 1e-5, 1e-5},
                        Case{"bf16", true, DType::bf16, 0, 3e-2, 0.1},
                        Case{"fp8 streamed", true, DType::f8e4m3, 40, 3e-2, 0.15}}) {
    const bool bf16 = c.bf16;
    const double tol = c.tol;
    INFO(c.name << " tolerance " << tol);
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
      parties[i]->host =
          std::make_unique<party::ExpertHost>(m, t, *parties[i]->shard, *parties[i]->opt, parties[i]->mu, ho);
    }
    test::LoopbackLink link("a", {{1, parties[1]->host.get()}, {2, parties[2]->host.get()}});
    model::Backbone fed(m, 7);
    fed->to(cuda);
    party::DispatchOptions dopt;
    dopt.self_id = "a";
    dopt.device = cuda;
    dopt.wire_dtype = c.wire;
    dopt.max_request_rows = c.max_request_rows;
    party::FederatedDispatcher disp(m, *parties[0]->shard, party::Placement::round_robin(m, n, 0), link,
                                    dopt);
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
      CHECK(rel_err(item.value().grad(), pc[item.key()].grad()) < c.grad_tol);
    }
    if (c.max_request_rows > 0) CHECK(disp.stats().requests > 4);  // streamed: several per host and layer
    CHECK(disp.stats().remote_forward.requests == disp.stats().requests);  // every reply had a timeline
    CHECK(disp.stats().remote_forward.host_compute_ms > 0);                // measured with CUDA events
  }
}

TEST_CASE("fp8 on the wire from CUDA gives the CPU codec's codes and scales", "[gpu]") {
  if (!torch::cuda::is_available()) FAIL("no CUDA device");
  const torch::Device cuda(torch::kCUDA, 0);
  auto x = torch::randn({512, 256}) * torch::pow(10.0, torch::arange(512).remainder(9) - 4).unsqueeze(1);
  for (DType d : {DType::f8e4m3, DType::f8e5m2}) {
    INFO(dtype_name(d));
    auto on_gpu = party::to_wire(x.to(cuda), d);
    // The CPU codec of common/fp8.h (what a build without float8 uses, and the tests' reference).
    std::vector<uint8_t> codes(static_cast<size_t>(x.numel()));
    std::vector<float> scales(static_cast<size_t>(x.size(0)));
    REQUIRE(fp8_quantize(x.data_ptr<float>(), x.size(0), x.size(1), x.size(1),
                         d == DType::f8e4m3 ? Fp8Format::e4m3 : Fp8Format::e5m2, codes.data(),
                         scales.data()));
    REQUIRE(on_gpu.data.size == codes.size());
    int64_t differ = 0;
    for (size_t i = 0; i < codes.size(); ++i) differ += on_gpu.data.data[i] != codes[i];
    std::printf("fp8 %s: %lld of %lld codes differ between CUDA and CPU\n",
                std::string(dtype_name(d)).c_str(), static_cast<long long>(differ),
                static_cast<long long>(x.numel()));
    CHECK(differ <= x.numel() / 10000);
    CHECK(std::memcmp(on_gpu.scales.data, scales.data(), on_gpu.scales.size) == 0);
    auto back = party::from_wire(on_gpu, cuda, torch::kFloat32).to(torch::kCPU);
    CHECK(rel_err(back, x) < (d == DType::f8e4m3 ? 0.05 : 0.1));
  }
}

TEST_CASE("fp8 kernels on CUDA give the CPU codec's codes, scales and values bit for bit", "[gpu]") {
  if (!torch::cuda::is_available()) FAIL("no CUDA device");
#if !defined(PCMOE_WITH_FP8_KERNELS)
  WARN("built without the fp8 CUDA kernels (no nvcc): nothing to compare");
#else
  const torch::Device cuda(torch::kCUDA, 0);
  // Rows over 54 decades (down to where the scale is FLT_MIN and codes are subnormal), a zero row,
  // a width that is no multiple of the kernel's 256 threads, a NaN row and an Inf row.
  const int64_t rows = 300, cols = 520;
  auto x =
      torch::randn({rows, cols}) * torch::pow(10.0, torch::arange(rows).remainder(19) * 3 - 40).unsqueeze(1);
  x[7].zero_();
  auto bad = x.clone();
  bad[3][5].fill_(NAN);
  bad[4][9].fill_(-INFINITY);
  for (auto elem : {torch::kFloat32, torch::kBFloat16}) {
    // The reference is the CPU codec on the same values (bf16 -> fp32 is exact).
    auto xs = x.to(elem);
    auto ref_in = xs.to(torch::kFloat32).contiguous();
    for (Fp8Format f : {Fp8Format::e4m3, Fp8Format::e5m2}) {
      INFO((elem == torch::kFloat32 ? "fp32 " : "bf16 ") << (f == Fp8Format::e4m3 ? "e4m3" : "e5m2"));
      std::vector<uint8_t> codes(static_cast<size_t>(rows * cols));
      std::vector<float> scales(static_cast<size_t>(rows));
      REQUIRE(fp8_quantize(ref_in.data_ptr<float>(), rows, cols, cols, f, codes.data(), scales.data()));
      auto [kc, ks] = model::fp8_quantize_rows_cuda(xs.to(cuda), f);
      kc = kc.cpu();
      ks = ks.cpu();
      CHECK(std::memcmp(kc.data_ptr<uint8_t>(), codes.data(), codes.size()) == 0);
      CHECK(std::memcmp(ks.data_ptr<float>(), scales.data(), scales.size() * sizeof(float)) == 0);
      // Dequantized, as fp32 and as bf16, with one scale per row and one per 8 elements.
      for (int64_t block : {cols, int64_t{8}}) {
        auto sc = block == cols ? ks : torch::rand({rows, cols / block}) * 3 + 0.25;
        std::vector<float> back(static_cast<size_t>(rows * cols));
        fp8_dequantize(codes.data(), sc.data_ptr<float>(), rows, cols, block, f, back.data());
        auto want = torch::from_blob(back.data(), {rows, cols}).clone();
        auto got = model::fp8_dequantize_cuda(kc.to(cuda), sc.to(cuda), block, f, torch::kFloat32).cpu();
        CHECK(std::memcmp(got.data_ptr<float>(), want.data_ptr<float>(), back.size() * sizeof(float)) == 0);
        auto got16 = model::fp8_dequantize_cuda(kc.to(cuda), sc.to(cuda), block, f, torch::kBFloat16).cpu();
        CHECK(torch::equal(got16, want.to(torch::kBFloat16)));
      }
    }
  }
  // NaN or Inf in a row: that row's scale is NaN, the others' as without it.
  auto [bc, bs] = model::fp8_quantize_rows_cuda(bad.to(cuda), Fp8Format::e4m3);
  auto [gc, gs] = model::fp8_quantize_rows_cuda(x.to(cuda), Fp8Format::e4m3);
  bs = bs.cpu();
  gs = gs.cpu();
  CHECK(std::isnan(bs[3].item<float>()));
  CHECK(std::isnan(bs[4].item<float>()));
  auto keep = torch::ones({rows}, torch::kBool);
  keep[3].fill_(false);
  keep[4].fill_(false);
  CHECK(torch::equal(bs.index({keep}), gs.index({keep})));
  CHECK(torch::equal(bc.cpu().index({keep}), gc.cpu().index({keep})));
  // The zero row: scale 1, codes 0.
  CHECK(gs[7].item<float>() == 1.0f);
  CHECK(gc[7].cpu().count_nonzero().item<int64_t>() == 0);
  // Empty: no launch, empty results.
  auto [ec, es] =
      model::fp8_quantize_rows_cuda(torch::empty({0, cols}, torch::device(cuda)), Fp8Format::e4m3);
  CHECK(ec.size(0) == 0);
  CHECK(es.size(0) == 0);
#endif
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

namespace {
// Peak allocated bytes of a few training steps of the whole model on `cuda` with random tokens,
// and in `estimate` the footprint model's for the experts that received rows in the peak step.
uint64_t measured_peak(const ModelConfig& m, const TrainConfig& t, const torch::Device& cuda,
                       uint64_t* estimate) {
  torch::cuda::synchronize();
  model::empty_cache(cuda);
  model::reset_peak_memory(cuda);
  const uint64_t before = model::peak_memory(cuda).allocated_bytes;  // whatever earlier tests left
  model::Backbone bb(m, 1);
  model::ExpertShard ex(m, 2, [](int, int) { return true; });
  bb->to(cuda);
  ex.to(cuda);
  model::LocalDispatcher local(ex);
  std::vector<model::NamedParam> params;
  for (auto& p : bb->named_parameters()) params.push_back({p.key(), p.value()});
  for (auto& [n, p] : ex.named_expert_params()) params.push_back({n, p});
  model::AdamW opt(params, t);
  opt.reserve_state();  // as the trainers do: the optimizer's memory is taken at start
  const bool bf16 = t.dtype == "bf16";
  // The estimate is the steady state, where every expert receives rows (and so has gradients and
  // a bf16 copy in the grouped GEMM) in every step. Early in training some experts receive none,
  // so the estimate compared is the model's for the experts that did receive rows in the step of
  // the highest peak (the first steps' peaks, before every expert has AdamW state, are the same
  // here: the state is reserved at start).
  uint64_t peak = 0;
  int64_t missing_experts = 0;  // experts without rows in the peak step, over all MoE layers
  for (int s = 0; s < 6; ++s) {
    model::reset_peak_memory(cuda);
    auto tokens = torch::randint(0, 259, {t.batch_size, m.seq_len + 1}, torch::kLong).to(cuda);
    model::ForwardResult out;
    {
      model::AutocastGuard ac(bf16, cuda);
      out = bb->forward(tokens, local);
    }
    out.loss.backward();
    opt.step(1e-3, model::clip_scale_tensor(model::grad_norm_tensor(opt.tensors()), 1.0));
    torch::cuda::synchronize();
    const uint64_t p = model::peak_memory(cuda).allocated_bytes - before;
    if (p > peak) {
      peak = p;
      missing_experts = 0;
      for (const auto& ls : out.stats)
        for (int64_t c : ls.counts) missing_experts += c == 0 ? 1 : 0;
    }
  }
  torch::cuda::synchronize();
  model::FootprintInput in;
  in.backbone_params = bb->parameter_count();
  in.hosted_expert_params = ex.parameter_count();
  in.hosted_experts_per_layer = m.n_experts;
  in.bf16 = bf16;
  model::Footprint f = model::estimate_footprint(m, t, in);
  const uint64_t per_expert = static_cast<uint64_t>(ex.parameter_count()) /
                              static_cast<uint64_t>(m.n_experts * m.moe_layer_indices().size());
  f.gradients -= 4 * per_expert * static_cast<uint64_t>(missing_experts);
  if (bf16) f.weight_casts -= 2 * per_expert * static_cast<uint64_t>(missing_experts);
  std::printf("footprint: %lld of %lld experts had no rows in the peak step\n",
              static_cast<long long>(missing_experts),
              static_cast<long long>(m.n_experts * m.moe_layer_indices().size()));
  *estimate = f.total();
  return peak;
}
}  // namespace

TEST_CASE("the footprint estimate is within 15% of the measured peak", "[gpu]") {
  if (!torch::cuda::is_available()) FAIL("no CUDA device");
  const torch::Device cuda(torch::kCUDA, 0);
  struct Case {
    const char* name;
    int d, layers, experts, d_ff, seq, batch;
    std::string dtype;
  };
  // Activation-heavy and parameter-heavy shapes, bf16 and fp32.
  for (const Case& c : {Case{"activations", 512, 4, 8, 1024, 512, 16, "bf16"},
                        Case{"parameters", 512, 4, 64, 2048, 256, 4, "bf16"},
                        Case{"fp32", 256, 4, 8, 512, 256, 16, "fp32"}}) {
    ModelConfig m;
    m.d_model = c.d;
    m.n_layers = c.layers;
    m.n_heads = 8;
    m.n_experts = c.experts;
    m.d_ff = c.d_ff;
    m.seq_len = c.seq;
    TrainConfig t;
    t.batch_size = c.batch;
    t.dtype = c.dtype;
    uint64_t est = 0;
    const uint64_t peak = measured_peak(m, t, cuda, &est);
    const double ratio = static_cast<double>(est) / static_cast<double>(peak);
    INFO(c.name << ": estimate " << (est >> 20) << " MiB, measured peak " << (peak >> 20) << " MiB, ratio "
                << ratio);
    std::printf("footprint %s: estimate %llu MiB, measured %llu MiB, ratio %.3f\n", c.name,
                static_cast<unsigned long long>(est >> 20), static_cast<unsigned long long>(peak >> 20),
                ratio);
    CHECK(ratio > 0.85);
    CHECK(ratio < 1.15);
  }
}

TEST_CASE("an out-of-memory on one expert request fails that request, not the host", "[gpu]") {
  if (!torch::cuda::is_available()) FAIL("no CUDA device");
  const torch::Device cuda(torch::kCUDA, 0);
  ModelConfig m = gpu_model();
  TrainConfig t;
  model::ExpertShard shard(m, 3, [](int, int) { return true; });
  shard.to(cuda);
  std::vector<model::NamedParam> params;
  for (auto& [n, p] : shard.named_expert_params()) params.push_back({n, p});
  model::AdamW opt(params, t);
  std::shared_mutex mu;
  party::HostOptions ho;
  ho.self_id = "h";
  ho.device = cuda;
  party::ExpertHost host(m, t, shard, opt, mu, ho);
  torch::cuda::synchronize();
  // Cap this process's allocator just above what is in use, then ask for far more.
  model::reset_peak_memory(cuda);  // the peak statistic is then what is allocated now
  const uint64_t in_use = model::peak_memory(cuda).allocated_bytes;
  model::set_memory_limit(cuda, in_use + (64ull << 20));
  auto request = [&](int64_t rows, uint64_t id) {
    proto::ExpertForward f;
    f.request_id = id;
    f.requester = "r";
    f.mode = proto::ExpertMode::eval;
    f.rows = party::to_wire(torch::randn({rows, m.d_model}), DType::f32);
    f.expert_ids = party::ids_to_wire(torch::zeros({rows}, torch::kLong), m.n_experts);
    return host.handle("r", f);
  };
  auto big = request(int64_t{4} << 20, 1);  // 4M rows: GiBs of activations
  REQUIRE(std::holds_alternative<proto::ErrorMsg>(big));
  CHECK(std::get<proto::ErrorMsg>(big).code == static_cast<uint16_t>(proto::ErrorCode::out_of_memory));
  auto small = request(8, 2);
  CHECK(std::holds_alternative<proto::ExpertForwardReply>(small));
  model::set_memory_limit(cuda, model::device_total_memory(cuda));  // restore for later tests
}

TEST_CASE("a party checkpoint on CUDA restores exactly and needs no GPU memory", "[gpu]") {
  if (!torch::cuda::is_available()) FAIL("no CUDA device");
  test::TempDir dir;
  PartyConfig cfg = test::party_config_with_corpus(dir, gpu_model());
  cfg.train.eval_every = 0;
  cfg.train.dtype = "bf16";
  cfg.run.device = "cuda:0";
  const torch::Device dev(torch::kCUDA, 0);
  test::LoopbackLink link("a", {});
  const auto placement = party::Placement::round_robin(cfg.model, 1, 0);
  auto a = std::make_unique<party::PartyTrainer>(cfg, 7, placement, link);
  for (int64_t s = 0; s < 3; ++s) a->train_step(s, 1);
  torch::cuda::synchronize();
  model::reset_peak_memory(dev);
  const uint64_t before = model::peak_memory(dev).allocated_bytes;
  const std::string first = dir.path() + "/a.pcmoe", second = dir.path() + "/b.pcmoe";
  a->save_checkpoint(first);
  // Copies go straight to host memory: the device holds nothing more while the file is written.
  CHECK(model::peak_memory(dev).allocated_bytes <= before);
  auto b = std::make_unique<party::PartyTrainer>(cfg, 8, placement, link);
  REQUIRE(b->restore_checkpoint(first) == std::optional<int64_t>(3));
  b->save_checkpoint(second);
  {
    const auto fa = train::load_checkpoint(first, cfg.model), fb = train::load_checkpoint(second, cfg.model);
    REQUIRE(fa.tensors.size() == fb.tensors.size());
    int differ = 0;
    for (const auto& t : fa.tensors) {
      const RawTensor* u = fb.find(t.name);
      if (!u || u->bytes != t.bytes) ++differ;
    }
    CHECK(differ == 0);
    CHECK(fa.tensors.size() > 10);
  }
}
