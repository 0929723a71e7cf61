// The attacks and their scoring (see attacks.h).
#include "audit/attacks.h"

#include "common/error.h"
#include "model/compat.h"

namespace pcmoe::audit {

Score score(const torch::Tensor& ranked, const torch::Tensor& truth) {
  Score s;
  const int64_t n = truth.size(0);
  if (n == 0) return s;
  PCMOE_CHECK_T(ModelError, ranked.dim() == 2 && ranked.size(0) == n && ranked.size(1) >= 5,
                "score: ranked must be [{}, >= 5]", n);
  auto hit = ranked.narrow(1, 0, 5).eq(truth.unsqueeze(1));
  s.top1 = hit.select(1, 0).to(torch::kFloat64).mean().item<double>();
  s.top5 = hit.any(1).to(torch::kFloat64).mean().item<double>();
  return s;
}

torch::Tensor rank_fixed(const torch::Tensor& counts, int64_t n_rows) {
  auto top = std::get<1>(counts.to(torch::kFloat64).topk(5));
  return top.unsqueeze(0).expand({n_rows, 5}).contiguous();
}

torch::Tensor rank_by_expert(const torch::Tensor& expert_token, const torch::Tensor& fallback,
                             const torch::Tensor& expert_ids) {
  auto table = std::get<1>(expert_token.to(torch::kFloat64).topk(5, 1));  // [n_experts, 5]
  auto unused = expert_token.sum(1).eq(0);
  auto fb = std::get<1>(fallback.to(torch::kFloat64).topk(5));
  table = torch::where(unused.unsqueeze(1), fb.unsqueeze(0).expand_as(table), table);
  auto ids = expert_ids.clamp(0, table.size(0) - 1);
  return table.index_select(0, ids);
}

torch::Tensor rank_by_embedding(const torch::Tensor& embeddings, const torch::Tensor& rows) {
  auto e = torch::nn::functional::normalize(embeddings.to(torch::kFloat32),
                                            torch::nn::functional::NormalizeFuncOptions().dim(1));
  auto r = torch::nn::functional::normalize(rows.to(torch::kFloat32),
                                            torch::nn::functional::NormalizeFuncOptions().dim(1));
  std::vector<torch::Tensor> out;
  for (int64_t i = 0; i < r.size(0); i += 8192) {
    auto sim = torch::matmul(r.narrow(0, i, std::min<int64_t>(8192, r.size(0) - i)), e.t());
    out.push_back(std::get<1>(sim.topk(5, 1)));
  }
  return out.empty() ? torch::empty({0, 5}, torch::kLong) : torch::cat(out, 0);
}

RowClassifier::RowClassifier(ClassifierOptions options) : opt_(options) {}

void RowClassifier::fit(const torch::Tensor& rows, const torch::Tensor& tokens, int64_t vocab) {
  PCMOE_CHECK_T(ModelError, rows.dim() == 2 && rows.size(0) == tokens.size(0) && rows.size(0) > 0,
                "classifier: {} rows for {} tokens", rows.size(0), tokens.size(0));
  torch::manual_seed(opt_.seed);
  const int64_t d = rows.size(1);
  mean_ = rows.mean(0, true);
  std_ = rows.std(0, true, true) + 1e-6;
  auto x = (rows - mean_) / std_;
  net_ = torch::nn::Sequential(torch::nn::Linear(d, opt_.hidden), torch::nn::ReLU(),
                               torch::nn::Linear(opt_.hidden, vocab));
  torch::optim::Adam adam(net_->parameters(), torch::optim::AdamOptions(opt_.lr));
  at::Generator gen = model::make_cpu_generator(opt_.seed);
  const int64_t n = x.size(0);
  for (int epoch = 0; epoch < opt_.epochs; ++epoch) {
    auto perm = at::randperm(n, gen, torch::TensorOptions().dtype(torch::kLong));
    for (int64_t i = 0; i < n; i += opt_.batch) {
      auto idx = perm.narrow(0, i, std::min<int64_t>(opt_.batch, n - i));
      auto loss = torch::nn::functional::cross_entropy(net_->forward(x.index_select(0, idx)),
                                                       tokens.index_select(0, idx));
      adam.zero_grad();
      loss.backward();
      adam.step();
    }
  }
  train_top1_ = score(rank(rows), tokens).top1;
}

torch::Tensor RowClassifier::rank(const torch::Tensor& rows) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> out;
  for (int64_t i = 0; i < rows.size(0); i += 8192) {
    auto x = (rows.narrow(0, i, std::min<int64_t>(8192, rows.size(0) - i)) - mean_) / std_;
    out.push_back(std::get<1>(net_->forward(x).topk(5, 1)));
  }
  return out.empty() ? torch::empty({0, 5}, torch::kLong) : torch::cat(out, 0);
}

}  // namespace pcmoe::audit
