// Backbone and MoE layer (see backbone.h).
#include "model/backbone.h"

#include <fmt/format.h>

#include "common/error.h"
#include "model/compat.h"
#include "model/moe.h"

namespace pcmoe::model {

// ---- Block ----
BlockImpl::BlockImpl(const ModelConfig& cfg, int layer, at::Generator& gen)
    : cfg_(cfg), layer_(layer), moe_(cfg.is_moe_layer(layer)) {
  norm1_ = register_module("norm1", Norm(cfg));
  attn_ = register_module("attn", Attention(cfg, gen));
  norm2_ = register_module("norm2", Norm(cfg));
  if (moe_) {
    gate_ = register_parameter("gate", normal_init({cfg.n_experts, cfg.d_model}, cfg.init_std, gen));
    bias_ = register_buffer("balance_bias", torch::zeros({cfg.n_experts}));
  } else {
    ffn_ = register_module("ffn", DenseFFN(cfg, cfg.d_ff_dense, gen));
  }
}

torch::Tensor BlockImpl::forward(const torch::Tensor& x, Rotary& rope, ExpertDispatcher& experts,
                                 ForwardResult& out) {
  auto h = x + attn_->forward(norm1_->forward(x), rope);
  auto n = norm2_->forward(h);
  if (!moe_) return h + ffn_->forward(n);
  const auto shape = n.sizes().vec();
  auto y = moe_forward(n.reshape({-1, shape.back()}), experts, out);
  return h + y.view(shape);
}

torch::Tensor BlockImpl::moe_forward(const torch::Tensor& x, ExpertDispatcher& experts, ForwardResult& out) {
  Routing r;
  {
    NoAutocastGuard fp32(x.device());  // routing decisions and router losses in fp32
    auto logits = torch::linear(upcast(x), gate_);
    torch::Tensor bias = cfg_.router.balance_bias_rate > 0 ? bias_ : torch::Tensor();
    r = route(logits, cfg_, experts.available_mask(layer_), bias);
  }
  auto layer_aux = cfg_.router.aux_loss_coef * r.aux_loss + cfg_.router.z_loss_coef * r.z_loss;
  out.aux_loss = out.aux_loss.defined() ? out.aux_loss + layer_aux : layer_aux;
  LayerStats stats;
  auto y = moe_combine(x, r, layer_, cfg_.n_experts, experts, &stats);
  out.stats.push_back(std::move(stats));
  return y;
}

// ---- Backbone ----
BackboneImpl::BackboneImpl(const ModelConfig& cfg, uint64_t seed) : cfg_(cfg) {
  at::Generator gen = make_cpu_generator(seed);
  tok_emb_ = register_parameter("tok_emb", normal_init({cfg.vocab_size, cfg.d_model}, cfg.init_std, gen));
  if (cfg.pos_encoding == "learned") {
    pos_emb_ = register_parameter("pos_emb", normal_init({cfg.seq_len, cfg.d_model}, cfg.init_std, gen));
  }
  rope_ = register_module("rope", Rotary(cfg_));
  auto list = register_module("blocks", torch::nn::ModuleList());
  for (int i = 0; i < cfg.n_layers; ++i) {
    blocks_.push_back(Block(cfg_, i, gen));
    list->push_back(blocks_.back());
  }
  norm_f_ = register_module("norm_f", Norm(cfg));
  if (!cfg.tie_embeddings) {
    head_ = register_parameter("head", normal_init({cfg.vocab_size, cfg.d_model}, cfg.init_std, gen));
  }
}

ForwardResult BackboneImpl::forward(const torch::Tensor& tokens, ExpertDispatcher& experts) {
  PCMOE_CHECK_T(ModelError, tokens.dim() == 2 && tokens.size(1) >= 2, "tokens must be [B, T+1] with T >= 1");
  const int64_t t = tokens.size(1) - 1;
  PCMOE_CHECK_T(ModelError, t <= cfg_.seq_len, "sequence length {} exceeds model.seq_len {}", t,
                cfg_.seq_len);
  auto ids = tokens.to(torch::kLong);
  auto inputs = ids.narrow(1, 0, t);
  auto targets = ids.narrow(1, 1, t);

  experts.note_inputs(inputs);
  ForwardResult out;
  auto x = torch::embedding(tok_emb_, inputs);
  if (pos_emb_.defined()) x = x + pos_emb_.narrow(0, 0, t).unsqueeze(0);
  for (auto& block : blocks_) x = block->forward(x, rope_, experts, out);
  x = norm_f_->forward(x);
  auto logits = torch::linear(x, head_.defined() ? head_ : tok_emb_);
  {
    NoAutocastGuard fp32(logits.device());
    out.ce_loss =
        torch::cross_entropy_loss(upcast(logits.reshape({-1, logits.size(-1)})), targets.reshape({-1}));
  }
  if (!out.aux_loss.defined()) out.aux_loss = torch::zeros({}, out.ce_loss.options());
  out.loss = out.ce_loss + out.aux_loss;
  out.tokens = targets.numel();
  return out;
}

void BackboneImpl::update_balance_bias(const std::vector<std::vector<double>>& load, double rate) {
  if (rate <= 0) return;
  torch::NoGradGuard no_grad;
  size_t i = 0;
  for (auto& block : blocks_) {
    if (!block->is_moe()) continue;
    if (i >= load.size()) break;
    const auto& l = load[i++];
    if (static_cast<int>(l.size()) != cfg_.n_experts) continue;
    auto share = torch::tensor(l, torch::kFloat64).to(block->balance_bias().options());
    block->balance_bias().add_(torch::sign(1.0 / cfg_.n_experts - share) * rate);
  }
}

int64_t BackboneImpl::parameter_count() const {
  int64_t n = 0;
  for (const auto& p : parameters()) n += p.numel();
  return n;
}

}  // namespace pcmoe::model
