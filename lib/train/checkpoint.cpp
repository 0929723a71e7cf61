// Checkpoint and exported-model files (see checkpoint.h).
#include "train/checkpoint.h"

#include <fmt/format.h>

#include <sstream>

#include "common/error.h"
#include "common/fs.h"
#include "common/log.h"

namespace pcmoe::train {

namespace {
std::string model_yaml(const ModelConfig& m) { return model_schema().to_yaml(m); }

// First line that differs between two YAML dumps, for a readable mismatch message.
std::string first_difference(const std::string& a, const std::string& b) {
  std::istringstream sa(a), sb(b);
  std::string la, lb;
  while (true) {
    bool ga = static_cast<bool>(std::getline(sa, la));
    bool gb = static_cast<bool>(std::getline(sb, lb));
    if (!ga && !gb) return "";
    if (la != lb || ga != gb) return fmt::format("checkpoint has '{}', config has '{}'", la, lb);
  }
}
}  // namespace

void save_checkpoint(const std::string& path, const ModelConfig& model,
                     std::map<std::string, std::string> meta, const model::NamedTensors& tensors) {
  TensorFile file;
  file.meta = std::move(meta);
  file.meta["format"] = kCheckpointFormat;
  file.meta["model_yaml"] = model_yaml(model);
  file.meta["created"] = log::utc_timestamp();
  file.tensors.reserve(tensors.size());
  for (const auto& [name, t] : tensors) file.tensors.push_back(model::to_raw(name, t));
  write_tensor_file(path, file);
}

TensorFile load_checkpoint(const std::string& path, const ModelConfig& model) {
  TensorFile file = read_tensor_file(path);
  auto fmt_it = file.meta.find("format");
  if (fmt_it == file.meta.end() || fmt_it->second != kCheckpointFormat) {
    throw DataError(fmt::format("{}: not a pcmoe checkpoint (format '{}')", path,
                                fmt_it == file.meta.end() ? "" : fmt_it->second));
  }
  auto yaml_it = file.meta.find("model_yaml");
  const std::string mine = model_yaml(model);
  if (yaml_it != file.meta.end() && yaml_it->second != mine) {
    throw ConfigError(fmt::format("{}: checkpoint was made for a different model config: {}", path,
                                  first_difference(yaml_it->second, mine)));
  }
  return file;
}

void export_model(const std::string& path, const ModelConfig& model, model::Backbone& backbone,
                  model::ExpertShard& experts, std::map<std::string, std::string> meta) {
  model::NamedTensors tensors = model::module_state(*backbone, "backbone.");
  for (auto& [name, t] : experts.named_expert_params()) tensors.emplace_back("experts." + name, t);
  meta["kind"] = "export";
  save_checkpoint(path, model, std::move(meta), tensors);
}

void load_model_weights(const TensorFile& file, model::Backbone& backbone, model::ExpertShard& experts) {
  model::load_module_state(*backbone, file, "backbone.", /*strict=*/true);
  model::load_module_state(experts, file, "experts.", /*strict=*/true);
}

int64_t meta_int(const TensorFile& file, const std::string& key, int64_t fallback) {
  auto it = file.meta.find(key);
  if (it == file.meta.end()) return fallback;
  try {
    return std::stoll(it->second);
  } catch (...) {
    throw DataError(fmt::format("checkpoint metadata '{}' is not an integer: '{}'", key, it->second));
  }
}

int64_t checkpoint_step(const std::string& path) {
  if (!fs::exists(path)) return 0;
  try {
    return std::stoll(read_tensor_file(path).meta_at("step"));
  } catch (const std::exception&) {
    return 0;  // unreadable: restore_checkpoint will say why
  }
}

}  // namespace pcmoe::train
