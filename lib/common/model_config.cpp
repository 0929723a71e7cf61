// Schemas, cross-field validation and the agreement hash of the shared model/train config.
#include "common/model_config.h"

#include <fmt/format.h>

#include <algorithm>
#include <sstream>

#include "common/hash.h"

namespace pcmoe {

using config::in_range;
using config::non_negative;
using config::one_of;
using config::positive;

config::Schema<RouterConfig> router_schema() {
  config::Schema<RouterConfig> s;
  s.field("aux_loss_coef", &RouterConfig::aux_loss_coef, "weight of the Switch/GShard load-balancing loss",
          non_negative<double>())
      .field("z_loss_coef", &RouterConfig::z_loss_coef,
             "weight of the router z-loss (mean squared logsumexp of router logits)", non_negative<double>())
      .field("normalize_topk", &RouterConfig::normalize_topk,
             "renormalise the top-k gate probabilities to sum to 1")
      .field("capacity_factor", &RouterConfig::capacity_factor,
             "0 = dropless; else each expert takes at most ceil(cf*tokens*k/experts) rows per layer and "
             "drops the rest",
             non_negative<double>())
      .field("balance_bias_rate", &RouterConfig::balance_bias_rate,
             "0 = off; else each step every expert's selection bias moves by this much towards balancing the "
             "hub's global expert load (selection only, not gate values)",
             non_negative<double>());
  return s;
}

config::Schema<ModelConfig> model_schema() {
  config::Schema<ModelConfig> s;
  s.field("tokenizer", &ModelConfig::tokenizer, "tokenizer: byte (256 byte ids + BOS, EOS, PAD)",
          one_of({"byte"}))
      .field("vocab_size", &ModelConfig::vocab_size, "embedding rows; >= the tokenizer's size (byte: 259)",
             in_range(1, 1 << 24))
      .field("seq_len", &ModelConfig::seq_len, "tokens per training sequence (context length)",
             in_range(2, 1 << 20))
      .field("d_model", &ModelConfig::d_model, "hidden size", in_range(1, 1 << 16))
      .field("n_layers", &ModelConfig::n_layers, "transformer blocks", in_range(1, 1024))
      .field("n_heads", &ModelConfig::n_heads, "attention heads; must divide d_model", in_range(1, 1 << 12))
      .field("d_ff", &ModelConfig::d_ff, "hidden size of each expert FFN", in_range(1, 1 << 20))
      .field("d_ff_dense", &ModelConfig::d_ff_dense, "hidden size of the dense FFN in non-MoE layers",
             in_range(1, 1 << 20))
      .field("n_experts", &ModelConfig::n_experts, "experts per MoE layer (m)", in_range(1, 4096))
      .field("top_k", &ModelConfig::top_k, "experts each token is routed to", in_range(1, 4096))
      .field("moe_layers", &ModelConfig::moe_layers,
             "which blocks are MoE: all, odd, even, or a comma list such as 1,3 (0-based)")
      .field("activation", &ModelConfig::activation, "FFN activation: swiglu or gelu",
             one_of({"swiglu", "gelu"}))
      .field("norm", &ModelConfig::norm, "normalisation: rmsnorm or layernorm (pre-norm)",
             one_of({"rmsnorm", "layernorm"}))
      .field("pos_encoding", &ModelConfig::pos_encoding, "positions: rope or learned",
             one_of({"rope", "learned"}))
      .field("rope_theta", &ModelConfig::rope_theta, "RoPE base frequency", positive<double>())
      .field("norm_eps", &ModelConfig::norm_eps, "epsilon of the norms", positive<double>())
      .field("tie_embeddings", &ModelConfig::tie_embeddings, "share the token embedding with the LM head")
      .field("init_std", &ModelConfig::init_std,
             "std of the normal weight init (output projections scaled by 1/sqrt(2*n_layers))",
             positive<double>())
      .section("router", &ModelConfig::router, router_schema());
  return s;
}

config::Schema<TrainConfig> train_schema() {
  config::Schema<TrainConfig> s;
  s.field("steps", &TrainConfig::steps, "total optimizer steps (federation: global steps over all parties)",
          positive<int64_t>())
      .field("batch_size", &TrainConfig::batch_size, "sequences per step", in_range(1, 1 << 20))
      .field("lr", &TrainConfig::lr, "peak learning rate (AdamW), in (0, 1]",
             std::function<std::string(const double&)>([](const double& v) {
               return v > 0 && v <= 1 ? std::string() : std::string("must be in (0, 1]");
             }))
      .field("min_lr_ratio", &TrainConfig::min_lr_ratio, "final LR of the cosine decay as a fraction of lr",
             in_range(0.0, 1.0))
      .field("warmup_steps", &TrainConfig::warmup_steps, "linear warmup steps", non_negative<int64_t>())
      .field("weight_decay", &TrainConfig::weight_decay,
             "AdamW decoupled weight decay (matrices only; not norms or biases)", non_negative<double>())
      .field("beta1", &TrainConfig::beta1, "AdamW beta1", in_range(0.0, 0.999999))
      .field("beta2", &TrainConfig::beta2, "AdamW beta2", in_range(0.0, 0.999999))
      .field("adam_eps", &TrainConfig::adam_eps, "AdamW epsilon", positive<double>())
      .field("grad_clip", &TrainConfig::grad_clip, "clip the global gradient norm to this; 0 disables",
             non_negative<double>())
      .field("expert_seed", &TrainConfig::expert_seed,
             "seed of the shared experts' initialisation (shared on purpose)")
      .field("expert_lr_scale", &TrainConfig::expert_lr_scale,
             "the experts' learning rate as a multiple of the schedule's (lr, warmup, cosine), in (0, 100]: "
             "a lever for concurrent rounds, where an expert takes one step per round on the mean of the "
             "parties' gradients",
             std::function<std::string(const double&)>([](const double& v) {
               return v > 0 && v <= 100 ? std::string() : std::string("must be in (0, 100]");
             }))
      .field("dtype", &TrainConfig::dtype,
             "compute dtype: fp32, or bf16 (autocast on CUDA with fp32 master weights)",
             one_of({"fp32", "bf16"}))
      .field("eval_every", &TrainConfig::eval_every, "held-out evaluation every N steps; 0 = only at the end",
             non_negative<int64_t>())
      .field("eval_batches", &TrainConfig::eval_batches, "held-out batches per evaluation", positive<int>());
  return s;
}

config::Schema<Preset> preset_schema() {
  config::Schema<Preset> s;
  s.section("model", &Preset::model, model_schema()).section("train", &Preset::train, train_schema());
  return s;
}

std::vector<int> ModelConfig::moe_layer_indices() const {
  std::vector<int> out;
  if (moe_layers == "all" || moe_layers == "odd" || moe_layers == "even") {
    for (int i = 0; i < n_layers; ++i) {
      if (moe_layers == "all" || (moe_layers == "odd" && i % 2 == 1) ||
          (moe_layers == "even" && i % 2 == 0)) {
        out.push_back(i);
      }
    }
    return out;
  }
  if (moe_layers == "none" || moe_layers.empty()) return out;
  std::stringstream ss(moe_layers);
  std::string item;
  while (std::getline(ss, item, ',')) {
    item.erase(std::remove(item.begin(), item.end(), ' '), item.end());
    int v = -1;
    try {
      size_t used = 0;
      v = std::stoi(item, &used);
      if (used != item.size()) v = -1;
    } catch (...) {
      v = -1;
    }
    if (v < 0 || v >= n_layers) {
      throw ConfigError(
          fmt::format("model.moe_layers: '{}' is not a layer index in [0, {}) (expected all, odd, even, none "
                      "or a list like 1,3)",
                      item, n_layers));
    }
    if (std::find(out.begin(), out.end(), v) == out.end()) out.push_back(v);
  }
  std::sort(out.begin(), out.end());
  return out;
}

bool ModelConfig::is_moe_layer(int layer) const {
  auto idx = moe_layer_indices();
  return std::find(idx.begin(), idx.end(), layer) != idx.end();
}

void validate(const ModelConfig& m, const config::Origins& o, const std::string& p) {
  std::vector<std::string> errors;
  auto key = [&](const char* k) { return o.describe(p + "." + k); };
  if (m.d_model % m.n_heads != 0) {
    errors.push_back(
        fmt::format("{}: d_model {} is not divisible by n_heads {}", key("n_heads"), m.d_model, m.n_heads));
  } else if (m.pos_encoding == "rope" && m.head_dim() % 2 != 0) {
    errors.push_back(
        fmt::format("{}: RoPE needs an even head size, d_model/n_heads = {}", key("n_heads"), m.head_dim()));
  }
  if (m.top_k > m.n_experts) {
    errors.push_back(fmt::format("{}: top_k {} exceeds n_experts {}", key("top_k"), m.top_k, m.n_experts));
  }
  if (m.tokenizer == "byte" && m.vocab_size < 259) {
    errors.push_back(fmt::format("{}: the byte tokenizer needs vocab_size >= 259, found {}",
                                 key("vocab_size"), m.vocab_size));
  }
  try {
    m.moe_layer_indices();
  } catch (const ConfigError& e) {
    errors.push_back(fmt::format("{}: {}", key("moe_layers"), e.what()));
  }
  if (!errors.empty()) {
    std::string msg;
    for (auto& e : errors) msg += (msg.empty() ? "" : "\n") + e;
    throw ConfigError(msg);
  }
}

void validate(const TrainConfig& t, const config::Origins& o, const std::string& p) {
  if (t.warmup_steps > t.steps) {
    throw ConfigError(fmt::format("{}: warmup_steps {} exceeds steps {}", o.describe(p + ".warmup_steps"),
                                  t.warmup_steps, t.steps));
  }
}

std::string model_config_hash(const ModelConfig& m, const TrainConfig& t) {
  // The emitted YAML is canonical: fields in schema order, fixed formatting. Keys added after runs
  // were saved are left out while at their defaults, so that those runs keep their hash (a hub
  // resumes only under the same hash): add such a key here.
  static const std::vector<std::pair<const char*, const char*>> kAddedLater = {{"train", "expert_lr_scale"}};
  const config::Schema<Preset> schema = preset_schema();
  YAML::Node node = schema.to_node(Preset{m, t});
  const YAML::Node defaults = schema.to_node(Preset{});
  for (const auto& [section, key] : kAddedLater) {
    if (YAML::Dump(node[section][key]) == YAML::Dump(defaults[section][key])) node[section].remove(key);
  }
  YAML::Emitter em;
  em << node;
  return fmt::format("{:016x}", fnv1a64(std::string(em.c_str()) + "\n"));
}

}  // namespace pcmoe
