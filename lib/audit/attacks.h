// Owns the attacks of pcmoe-attack on the rows a host received (README "Privacy"), each ranking
// the tokens it believes are behind each row, and their scoring against the truth: top-1 and
// top-5 token accuracy. None reads the truth except the oracle frequency baseline, which is
// what a row-independent guess can do at best (the bar every attack is measured against).
#pragma once

#include <torch/torch.h>

#include <cstdint>

namespace pcmoe::audit {

struct Score {
  double top1 = 0;  // share of rows whose true token is ranked first
  double top5 = 0;  // among the first five
};

// ranked: [n, k >= 5] token ids, best first; truth: [n].
Score score(const torch::Tensor& ranked, const torch::Tensor& truth);

// The same five tokens for every row, the most frequent of `counts` ([vocab]).
torch::Tensor rank_fixed(const torch::Tensor& counts, int64_t n_rows);

// Routing trace: a row's expert id -> the tokens the attacker's own routers sent to that expert
// most often (expert_token [n_experts, vocab]); experts it never used rank `fallback` counts.
torch::Tensor rank_by_expert(const torch::Tensor& expert_token, const torch::Tensor& fallback,
                             const torch::Tensor& expert_ids);

// Nearest embedding: the tokens whose embedding ([vocab, d]) has the highest cosine similarity
// with the row, with no training at all.
torch::Tensor rank_by_embedding(const torch::Tensor& embeddings, const torch::Tensor& rows);

struct ClassifierOptions {
  int hidden = 512;
  int epochs = 6;
  int batch = 512;
  double lr = 2e-3;
  uint64_t seed = 1;
};

// Row -> token: an MLP (standardised inputs, one hidden layer) trained on (rows, tokens) the
// attacker produced with a backbone it holds, then applied to the victim's rows.
class RowClassifier {
 public:
  explicit RowClassifier(ClassifierOptions options = {});
  // Trains from scratch. rows [n, d] f32, tokens [n] int64 < vocab.
  void fit(const torch::Tensor& rows, const torch::Tensor& tokens, int64_t vocab);
  // [n, 5] token ids, best first.
  torch::Tensor rank(const torch::Tensor& rows);
  double train_accuracy() const { return train_top1_; }

 private:
  ClassifierOptions opt_;
  torch::nn::Sequential net_{nullptr};
  torch::Tensor mean_, std_;
  double train_top1_ = 0;
};

}  // namespace pcmoe::audit
