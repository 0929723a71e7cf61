// Non-template parts of the YAML configuration machinery (see config_schema.h).
#include "common/config_schema.h"

#include <fmt/format.h>

#include <sys/stat.h>
#include <algorithm>
#include <fstream>

namespace pcmoe::config {

std::string Origins::describe(const std::string& key) const {
  auto it = where_.find(key);
  if (it == where_.end()) return fmt::format("key '{}' (default)", key);
  return fmt::format("{}: key '{}'", it->second, key);
}

void LoadContext::error(int line, const std::string& key, const std::string& msg) {
  if (file == "--set") {
    errors.push_back(fmt::format("--set: key '{}': {}", key, msg));
  } else if (line > 0) {
    errors.push_back(fmt::format("{}:{}: key '{}': {}", file, line, key, msg));
  } else {
    errors.push_back(fmt::format("{}: key '{}': {}", file, key, msg));
  }
}

namespace detail {

std::string node_kind(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
      return "nothing (null)";
    case YAML::NodeType::Scalar:
      return "'" + node.Scalar() + "'";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a map";
    case YAML::NodeType::Undefined:
      return "nothing";
  }
  return "?";
}

int node_line(const YAML::Node& node) {
  if (!node.IsDefined()) return 0;
  int line = node.Mark().line;
  return line >= 0 ? line + 1 : 0;
}

std::string scalar_text(const YAML::Node& node) { return node.IsScalar() ? node.Scalar() : std::string(); }

namespace {
size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}
}  // namespace

std::string closest_key(const std::string& key, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_d = std::max<size_t>(3, key.size() / 4) + 1;
  for (const auto& c : candidates) {
    size_t d = edit_distance(key, c);
    // Also match on the last component, so "d_modl" finds "model.d_model".
    auto dot = c.rfind('.');
    if (dot != std::string::npos) d = std::min(d, edit_distance(key, c.substr(dot + 1)));
    if (d < best_d) {
      best_d = d;
      best = c;
    }
  }
  return best;
}

}  // namespace detail

YAML::Node read_yaml_file(const std::string& path, LoadContext& ctx) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    ctx.errors.push_back(fmt::format("{}: config file not found", path));
    return YAML::Node();
  }
  if (!S_ISREG(st.st_mode)) {
    ctx.errors.push_back(fmt::format("{}: not a regular file", path));
    return YAML::Node();
  }
  try {
    return YAML::LoadFile(path);
  } catch (const YAML::ParserException& e) {
    ctx.errors.push_back(fmt::format("{}:{}: YAML syntax error: {}", path, e.mark.line + 1, e.msg));
  } catch (const YAML::Exception& e) {
    ctx.errors.push_back(fmt::format("{}: cannot read: {}", path, e.msg));
  }
  return YAML::Node();
}

std::string resolve_relative(const std::string& base_file, const std::string& rel) {
  if (rel.empty() || rel[0] == '/') return rel;
  auto slash = base_file.rfind('/');
  if (slash == std::string::npos) return rel;
  return base_file.substr(0, slash + 1) + rel;
}

std::function<std::string(const std::string&)> one_of(std::vector<std::string> choices) {
  return [choices](const std::string& v) {
    if (std::find(choices.begin(), choices.end(), v) != choices.end()) return std::string();
    std::string list;
    for (const auto& c : choices) list += (list.empty() ? "" : ", ") + c;
    return "must be one of: " + list;
  };
}

std::function<std::string(const std::string&)> non_empty() {
  return [](const std::string& v) { return v.empty() ? std::string("must not be empty") : std::string(); };
}

}  // namespace pcmoe::config
