// pcmoe-eval's job (see eval_file.h).
#include "train/eval_file.h"

#include "data/loader.h"
#include "model/backbone.h"
#include "model/compat.h"
#include "model/expert.h"
#include "train/checkpoint.h"
#include "train/evaluate.h"

namespace pcmoe::train {

JsonObject evaluate_model_file(const CentralConfig& cfg, const std::string& path, int batches) {
  model::set_threads(cfg.run.threads);
  const torch::Device device = model::parse_device(cfg.run.device);
  // The seed is irrelevant: every weight comes from the file.
  model::Backbone backbone(cfg.model, 1);
  model::ExpertShard experts(cfg.model, cfg.train.expert_seed, [](int, int) { return true; });
  TensorFile file = load_checkpoint(path, cfg.model);
  load_model_weights(file, backbone, experts);
  backbone->to(device);
  experts.to(device);
  model::LocalDispatcher dispatcher(experts);
  auto heldout = data::heldout_batches(cfg.data, batches, cfg.train.batch_size, cfg.model.seq_len);
  auto r = evaluate(backbone, dispatcher, heldout, device, cfg.train.dtype == "bf16");
  JsonObject out;
  out.add("checkpoint", path).add("step", meta_int(file, "step", -1)).add("loss", r.loss);
  out.add("bpb", r.bits_per_byte).add("tokens", r.tokens).add("byte_targets", r.byte_targets);
  out.add("batches", static_cast<int64_t>(heldout.size()));
  return out;
}

}  // namespace pcmoe::train
