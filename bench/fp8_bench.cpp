// pcmoe-bench-fp8: how much an fp8 wire loses, measured on the real traffic of a model in training.
// Trains a pcmoe-central model (any config: preset + data) for --steps steps, then captures, at
// every MoE layer of one more step, the rows that would travel to the experts and the gradients
// that would come back for them; quantizes each with every candidate format (fp8e4m3, fp8e5m2)
// and scale granularity (one scale per row, per 128 or 32 elements) with the wire's own codec, and
// prints per layer and tensor: the relative L2 error of the whole tensor, the median / 99th
// percentile / maximum relative error of a row, and the share of non-zero elements that became 0.
// This is what decides the wire formats of party.wire_dtype: fp8 (README, bench/results/NOTES.md).
//   pcmoe-bench-fp8 --config FILE [--set key=value ...] [--steps 200]
#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "common/fp8.h"
#include "common/log.h"
#include "common/run_config.h"
#include "data/loader.h"
#include "model/backbone.h"
#include "model/compat.h"
#include "model/expert.h"
#include "model/optim.h"
#include "train/evaluate.h"
#include "train/step.h"

using namespace pcmoe;

namespace {

// Local experts, recording what a federation would send and get back at each MoE layer.
class CapturingDispatcher : public model::ExpertDispatcher {
 public:
  explicit CapturingDispatcher(model::ExpertShard& shard) : inner_(shard) {}
  bool capture = false;
  std::map<int, torch::Tensor> rows, grads;
  torch::Tensor dispatch(int layer, const torch::Tensor& x, const torch::Tensor& ids,
                         const std::vector<int64_t>& counts) override {
    auto y = inner_.dispatch(layer, x, ids, counts);
    if (capture && y.requires_grad()) {
      rows[layer] = x.detach().to(torch::kCPU, torch::kFloat32).contiguous();
      y.register_hook([this, layer](torch::Tensor g) {
        grads[layer] = g.detach().to(torch::kCPU, torch::kFloat32).contiguous();
        return g;
      });
    }
    return y;
  }

 private:
  model::LocalDispatcher inner_;
};

struct ErrStats {
  double total = 0, median = 0, p99 = 0, max = 0, underflow = 0;
};

ErrStats round_trip(const torch::Tensor& x, Fp8Format f, int64_t block) {
  const int64_t rows = x.size(0), cols = x.size(1);
  std::vector<uint8_t> q(static_cast<size_t>(rows * cols));
  std::vector<float> s(static_cast<size_t>(rows * cols / block));
  auto y = torch::empty_like(x);
  fp8_quantize(x.data_ptr<float>(), rows, cols, block, f, q.data(), s.data());
  fp8_dequantize(q.data(), s.data(), rows, cols, block, f, y.data_ptr<float>());
  ErrStats e;
  e.total = ((y - x).norm() / x.norm().clamp_min(1e-30)).item<double>();
  auto per_row = ((y - x).norm(2, 1) / x.norm(2, 1).clamp_min(1e-30));
  auto sorted = std::get<0>(per_row.sort());
  e.median = sorted[rows / 2].item<double>();
  e.p99 = sorted[std::min<int64_t>(rows - 1, rows * 99 / 100)].item<double>();
  e.max = sorted[rows - 1].item<double>();
  auto nz = x != 0;
  e.underflow = ((y == 0) & nz).sum().item<double>() / std::max(1.0, nz.sum().item<double>());
  return e;
}

}  // namespace

int main(int argc, char** argv) {
  std::string config;
  std::vector<std::string> sets;
  int steps = 200;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--config") {
      config = v;
    } else if (k == "--set") {
      sets.push_back(v);
    } else if (k == "--steps") {
      steps = std::stoi(v);
    } else {
      std::fprintf(stderr, "usage: pcmoe-bench-fp8 --config FILE [--set key=value ...] [--steps N]\n");
      return 2;
    }
  }
  if (config.empty()) {
    std::fprintf(stderr, "pcmoe-bench-fp8: --config FILE is required\n");
    return 2;
  }
  log::init({"bench-fp8", log::Level::warn, ""});
  CentralConfig cfg = load_central_config(config, sets);
  model::set_threads(cfg.run.threads);
  const torch::Device device = model::parse_device(cfg.run.device);
  model::Backbone backbone(cfg.model, cfg.run.seed);
  model::ExpertShard experts(cfg.model, cfg.train.expert_seed, [](int, int) { return true; });
  backbone->to(device);
  experts.to(device);
  CapturingDispatcher dispatcher(experts);
  std::vector<model::NamedParam> params;
  for (auto& p : backbone->named_parameters()) params.push_back({"backbone." + p.key(), p.value()});
  for (auto& [n, t] : experts.named_expert_params()) params.push_back({"experts." + n, t});
  model::AdamW opt(std::move(params), cfg.train);
  data::BatchLoader loader(cfg.data, data::Split::train, cfg.train.batch_size, cfg.model.seq_len);
  const bool bf16 = cfg.train.dtype == "bf16";
  const train::StepModel sm{&backbone, &dispatcher, &opt, nullptr, nullptr, device, bf16};
  double loss = 0;
  for (int s = 0; s < steps; ++s) loss = train::train_step(sm, loader, s, cfg.train).loss;
  dispatcher.capture = true;
  loss = train::train_step(sm, loader, steps, cfg.train).loss;
  std::printf(
      "\n== fp8 on the wire: round-trip error of real rows and gradients (d_model %d, after %d steps, "
      "loss %.3f)\n",
      cfg.model.d_model, steps, loss);
  std::printf("%-6s %-9s %-8s %6s %10s %10s %10s %10s %10s\n", "layer", "tensor", "format", "block", "total",
              "row med", "row p99", "row max", "underflow");
  const int64_t d = cfg.model.d_model;
  for (const auto& [layer, x] : dispatcher.rows) {
    for (const auto* kind : {"rows", "grads"}) {
      const torch::Tensor& t = std::string(kind) == "rows" ? x : dispatcher.grads[layer];
      if (!t.defined()) continue;
      for (Fp8Format f : {Fp8Format::e4m3, Fp8Format::e5m2}) {
        std::vector<int64_t> blocks = {d};
        for (int64_t b : {int64_t{128}, int64_t{32}}) {
          if (b < d && d % b == 0) blocks.push_back(b);
        }
        for (int64_t block : blocks) {
          const ErrStats e = round_trip(t, f, block);
          std::printf("%-6d %-9s %-8s %6lld %10.4f %10.4f %10.4f %10.4f %10.5f\n", layer, kind,
                      f == Fp8Format::e4m3 ? "e4m3" : "e5m2", static_cast<long long>(block), e.total,
                      e.median, e.p99, e.max, e.underflow);
        }
      }
    }
  }
  return 0;
}
