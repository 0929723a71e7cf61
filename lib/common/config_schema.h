// Owns the YAML configuration machinery: a Schema<T> lists every key of a config struct (dotted
// name, type, default, doc, check) and loads files and `--set key=value` overrides into the
// struct, reporting every problem with file, line, key, and expected vs found. Unknown keys are
// errors. The field list also generates the README's reference table and `--print-config`.
// Modules never read YAML: apps load once and pass the struct by const reference.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "common/error.h"

namespace pcmoe::config {

// Where each key's value came from ("file:line" or "--set"), for later cross-field checks.
class Origins {
 public:
  void set(const std::string& key, std::string where) { where_[key] = std::move(where); }
  // "configs/party-a.yaml:12: key 'model.top_k'" or "key 'model.top_k' (default)".
  std::string describe(const std::string& key) const;

 private:
  std::map<std::string, std::string> where_;
};

// Runs f(), reporting a ConfigError or TransportError it throws where the operator set `key`
// ("configs/party-a.yaml:4: key 'party.hub': bad endpoint ..."), with the same type.
template <class F>
void at_config_key(const Origins& origins, const std::string& key, F&& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    throw ConfigError(origins.describe(key) + ": " + e.what());
  } catch (const TransportError& e) {
    throw TransportError(origins.describe(key) + ": " + e.what());
  }
}

struct FieldInfo {
  std::string key;
  std::string type;
  std::string default_value;
  std::string doc;
};

// Accumulates problems found while loading; throws them all at once.
struct LoadContext {
  std::string file;  // the file being read, or "--set"
  Origins* origins = nullptr;
  std::vector<std::string> errors;
  void error(int line, const std::string& key, const std::string& msg);
};

namespace detail {
std::string node_kind(const YAML::Node& node);
int node_line(const YAML::Node& node);
std::string closest_key(const std::string& key, const std::vector<std::string>& candidates);
std::string scalar_text(const YAML::Node& node);

template <class V>
struct TypeName;
template <>
struct TypeName<bool> {
  static constexpr const char* name = "bool";
};
template <>
struct TypeName<int> {
  static constexpr const char* name = "int";
};
template <>
struct TypeName<int64_t> {
  static constexpr const char* name = "int";
};
template <>
struct TypeName<uint64_t> {
  static constexpr const char* name = "uint";
};
template <>
struct TypeName<double> {
  static constexpr const char* name = "float";
};
template <>
struct TypeName<std::string> {
  static constexpr const char* name = "string";
};
template <>
struct TypeName<std::vector<std::string>> {
  static constexpr const char* name = "list of string";
};
template <>
struct TypeName<std::vector<int>> {
  static constexpr const char* name = "list of int";
};

template <class V>
YAML::Node to_node(const V& v) {
  return YAML::Node(v);
}

// Converts a scalar/sequence node to V; returns false with `why` set when it cannot.
template <class V>
bool convert(const YAML::Node& node, V& out, std::string& why) {
  constexpr bool is_list = std::is_same_v<V, std::vector<std::string>> || std::is_same_v<V, std::vector<int>>;
  if constexpr (is_list) {
    if (!node.IsSequence()) {
      why = "expected a list, found " + node_kind(node);
      return false;
    }
    V result;
    for (const auto& item : node) {
      typename V::value_type x{};
      if (!convert(item, x, why)) return false;
      result.push_back(x);
    }
    out = std::move(result);
    return true;
  } else {
    if (!node.IsScalar()) {
      why = std::string("expected ") + TypeName<V>::name + ", found " + node_kind(node);
      return false;
    }
    try {
      if constexpr (std::is_same_v<V, uint64_t>) {
        if (!scalar_text(node).empty() && scalar_text(node)[0] == '-') throw YAML::BadConversion(node.Mark());
      }
      out = node.as<V>();
      if constexpr (std::is_same_v<V, double>) {
        if (!std::isfinite(out)) {  // .inf, .nan: never a meaningful setting
          why = "expected a finite float, found '" + scalar_text(node) + "'";
          return false;
        }
      }
      return true;
    } catch (const YAML::Exception&) {
      why = std::string("expected ") + TypeName<V>::name + ", found '" + scalar_text(node) + "'";
      return false;
    }
  }
}
}  // namespace detail

template <class T>
class Schema {
 public:
  struct Field {
    std::string key;
    std::string type;
    std::string doc;
    // Converts, checks and stores `node` into `obj`; problems go to ctx.
    std::function<void(T& obj, const YAML::Node& node, LoadContext& ctx, const std::string& key)> parse;
    std::function<YAML::Node(const T& obj)> emit;
  };

  // A scalar or list field. `check` returns "" when the value is fine, else what is expected.
  template <class V>
  Schema& field(std::string key, V T::*member, std::string doc,
                std::function<std::string(const V&)> check = nullptr) {
    Field f;
    f.key = std::move(key);
    f.type = detail::TypeName<V>::name;
    f.doc = std::move(doc);
    f.parse = [member, check](T& obj, const YAML::Node& node, LoadContext& ctx, const std::string& k) {
      V value{};
      std::string why;
      if (!detail::convert(node, value, why)) {
        ctx.error(detail::node_line(node), k, why);
        return;
      }
      if (check) {
        std::string bad = check(value);
        if (!bad.empty()) {
          ctx.error(detail::node_line(node), k, bad + ", found '" + describe_value(node) + "'");
          return;
        }
      }
      obj.*member = std::move(value);
    };
    f.emit = [member](const T& obj) { return detail::to_node(obj.*member); };
    fields_.push_back(std::move(f));
    return *this;
  }

  // All fields of `sub` under "prefix.", stored in obj.*member.
  template <class S>
  Schema& section(const std::string& prefix, S T::*member, const Schema<S>& sub) {
    for (const auto& sf : sub.fields()) {
      Field f;
      f.key = prefix + "." + sf.key;
      f.type = sf.type;
      f.doc = sf.doc;
      auto parse = sf.parse;
      auto emit = sf.emit;
      f.parse = [member, parse](T& obj, const YAML::Node& node, LoadContext& ctx, const std::string& k) {
        parse(obj.*member, node, ctx, k);
      };
      f.emit = [member, emit](const T& obj) { return emit(obj.*member); };
      fields_.push_back(std::move(f));
    }
    for (const auto& [key, infos] : sub.elem_field_infos()) elem_fields_[prefix + "." + key] = infos;
    return *this;
  }

  // A list of maps, each loaded with `elem` (e.g. data sources). Replaces the whole list.
  template <class E>
  Schema& list(std::string key, std::vector<E> T::*member, Schema<E> elem, std::string doc) {
    Field f;
    f.key = std::move(key);
    f.type = "list of map";
    f.doc = std::move(doc);
    auto shared = std::make_shared<Schema<E>>(std::move(elem));
    f.parse = [member, shared](T& obj, const YAML::Node& node, LoadContext& ctx, const std::string& k) {
      if (!node.IsSequence()) {
        ctx.error(detail::node_line(node), k, "expected a list of maps, found " + detail::node_kind(node));
        return;
      }
      std::vector<E> items;
      size_t i = 0;
      for (const auto& item : node) {
        E e{};
        shared->load_map(item, e, ctx, k + "[" + std::to_string(i++) + "]");
        items.push_back(std::move(e));
      }
      obj.*member = std::move(items);
    };
    f.emit = [member, shared](const T& obj) {
      YAML::Node seq(YAML::NodeType::Sequence);
      for (const auto& e : obj.*member) seq.push_back(shared->to_node(e));
      return seq;
    };
    fields_.push_back(std::move(f));
    elem_fields_[fields_.back().key] = shared->field_infos(E{});
    return *this;
  }

  // A key whose value names another YAML file (relative to this one) loaded first with this same
  // schema, e.g. `preset: models/tiny.yaml`. Keys in the including file win.
  Schema& include_key(std::string key) {
    include_key_ = std::move(key);
    return *this;
  }

  const std::vector<Field>& fields() const { return fields_; }
  // Fields of the elements of each list of maps, by the list's key.
  const std::map<std::string, std::vector<FieldInfo>>& elem_field_infos() const { return elem_fields_; }

  // Loads `path` into `out`. Throws ConfigError listing every problem (one per line).
  void load_file(const std::string& path, T& out, Origins* origins = nullptr) const {
    LoadContext ctx;
    ctx.origins = origins;
    load_file_into(path, out, ctx, 0);
    throw_if_errors(ctx);
  }

  // Applies one "dotted.key=value" override (value parsed as YAML). Throws ConfigError.
  void apply_override(const std::string& assignment, T& out, Origins* origins = nullptr) const {
    LoadContext ctx;
    ctx.file = "--set";
    ctx.origins = origins;
    auto eq = assignment.find('=');
    if (eq == std::string::npos || eq == 0) {
      throw ConfigError("--set " + assignment + ": expected key=value");
    }
    std::string key = assignment.substr(0, eq);
    const std::string raw = assignment.substr(eq + 1);
    YAML::Node value;
    if (target_type(key) == "string") {
      value = YAML::Node(raw);  // taken literally: keys and paths may hold YAML's special characters
    } else {
      try {
        value = YAML::Load(raw);
      } catch (const YAML::Exception& e) {
        throw ConfigError("--set " + assignment + ": value is not valid YAML: " + e.msg);
      }
      if (!value.IsDefined() || value.IsNull()) value = YAML::Node(raw);
    }
    if (key.find('[') != std::string::npos) {
      apply_list_override(key, value, out, ctx);
      throw_if_errors(ctx);
      if (origins) origins->set(key, "--set");
      return;
    }
    const Field* f = find(key);
    if (!f) {
      ctx.error(0, key, "unknown key" + suggestion(key));
    } else {
      f->parse(out, value, ctx, key);
      if (origins) origins->set(key, "--set");
    }
    throw_if_errors(ctx);
  }

  // The effective configuration as YAML text (for --print-config).
  std::string to_yaml(const T& obj) const {
    YAML::Emitter em;
    em << to_node(obj);
    return std::string(em.c_str()) + "\n";
  }

  YAML::Node to_node(const T& obj) const {
    YAML::Node root(YAML::NodeType::Map);
    for (const auto& f : fields_) {
      std::vector<std::string> parts = split(f.key);
      YAML::Node cur = root;
      for (size_t i = 0; i + 1 < parts.size(); ++i) {
        if (!cur[parts[i]]) cur[parts[i]] = YAML::Node(YAML::NodeType::Map);
        cur.reset(cur[parts[i]]);
      }
      cur[parts.back()] = f.emit(obj);
    }
    return root;
  }

  // Every key with type, default (from `defaults`) and doc, including keys of list elements.
  std::vector<FieldInfo> field_infos(const T& defaults) const {
    std::vector<FieldInfo> out;
    for (const auto& f : fields_) {
      YAML::Emitter em;
      em << YAML::Flow << f.emit(defaults);
      out.push_back({f.key, f.type, em.c_str(), f.doc});
      auto it = elem_fields_.find(f.key);
      if (it != elem_fields_.end()) {
        for (const auto& sub : it->second) {
          out.push_back({f.key + "[]." + sub.key, sub.type, sub.default_value, sub.doc});
        }
      }
    }
    return out;
  }

  // Loads one YAML map (used for list elements and by load_file).
  void load_map(const YAML::Node& node, T& out, LoadContext& ctx, const std::string& prefix) const {
    if (!node.IsMap()) {
      ctx.error(detail::node_line(node), prefix.empty() ? "(top level)" : prefix,
                "expected a map, found " + detail::node_kind(node));
      return;
    }
    walk(node, out, ctx, prefix, prefix.empty() ? "" : prefix + ".");
  }

 private:
  static std::vector<std::string> split(const std::string& key) {
    std::vector<std::string> parts;
    size_t start = 0;
    while (true) {
      size_t dot = key.find('.', start);
      parts.push_back(key.substr(start, dot - start));
      if (dot == std::string::npos) break;
      start = dot + 1;
    }
    return parts;
  }

  static std::string describe_value(const YAML::Node& node) {
    if (node.IsScalar()) return detail::scalar_text(node);
    YAML::Emitter em;
    em << YAML::Flow << node;
    return em.c_str();
  }

  const Field* find(const std::string& key) const {
    for (const auto& f : fields_) {
      if (f.key == key) return &f;
    }
    return nullptr;
  }

  bool is_section(const std::string& key) const {
    for (const auto& f : fields_) {
      if (f.key.size() > key.size() && f.key.compare(0, key.size(), key) == 0 && f.key[key.size()] == '.') {
        return true;
      }
    }
    return false;
  }

  std::string suggestion(const std::string& key) const {
    std::vector<std::string> keys;
    for (const auto& f : fields_) keys.push_back(f.key);
    std::string best = detail::closest_key(key, keys);
    return best.empty() ? "" : " (did you mean '" + best + "'?)";
  }

  // `display` is the key path shown in messages (list elements carry their index); field lookup
  // uses the path relative to this schema.
  void walk(const YAML::Node& map, T& out, LoadContext& ctx, const std::string& display_prefix,
            const std::string& key_prefix_display, const std::string& rel_prefix = "") const {
    std::map<std::string, int> seen;  // key -> line: YAML would let the last one win silently
    for (const auto& kv : map) {
      std::string name;
      try {
        name = kv.first.as<std::string>();
      } catch (const YAML::Exception&) {
        ctx.error(detail::node_line(kv.first), display_prefix, "keys must be strings");
        continue;
      }
      std::string rel = rel_prefix.empty() ? name : rel_prefix + "." + name;
      std::string shown = key_prefix_display + rel;
      if (auto [it, fresh] = seen.emplace(name, detail::node_line(kv.first)); !fresh) {
        ctx.error(detail::node_line(kv.first), shown,
                  fmt::format("given twice in one map (also on line {}): remove one", it->second));
        continue;
      }
      if (rel_prefix.empty() && !include_key_.empty() && name == include_key_)
        continue;  // handled by load_file
      if (const Field* f = find(rel)) {
        f->parse(out, kv.second, ctx, shown);
        if (ctx.origins)
          ctx.origins->set(shown, ctx.file + ":" + std::to_string(detail::node_line(kv.second)));
      } else if (is_section(rel)) {
        if (kv.second.IsNull()) continue;  // an empty section keeps its defaults
        if (!kv.second.IsMap()) {
          ctx.error(detail::node_line(kv.second), shown,
                    "expected a map (a section), found " + detail::node_kind(kv.second));
          continue;
        }
        walk(kv.second, out, ctx, display_prefix, key_prefix_display, rel);
      } else {
        ctx.error(detail::node_line(kv.first), shown, "unknown key" + suggestion(rel));
      }
    }
  }

  void load_file_into(const std::string& path, T& out, LoadContext& ctx, int depth) const;

  // The type name of the field `key` addresses ("" if none), list elements included.
  std::string target_type(const std::string& key) const {
    const auto lb = key.find('[');
    if (lb == std::string::npos) {
      const Field* f = find(key);
      return f ? f->type : "";
    }
    const auto rb = key.find(']', lb);
    auto it = elem_fields_.find(key.substr(0, lb));
    if (it == elem_fields_.end() || rb == std::string::npos || rb + 2 > key.size()) return "";
    for (const auto& info : it->second) {
      if (info.key == key.substr(rb + 2)) return info.type;
    }
    return "";
  }

  // "list.key[i].sub.key=value": edits element i of a list of maps (i == size appends one) and
  // loads the whole list again, so every check of the element schema applies.
  void apply_list_override(const std::string& key, const YAML::Node& value, T& out, LoadContext& ctx) const {
    const auto lb = key.find('[');
    const auto rb = key.find(']', lb);
    const std::string list_key = key.substr(0, lb);
    const Field* f = find(list_key);
    if (!f || f->type != "list of map" || rb == std::string::npos) {
      ctx.error(0, key,
                "unknown key" + suggestion(list_key) +
                    " (an index [i] applies to a list of maps, e.g. data.sources[0].path)");
      return;
    }
    size_t index = 0;
    const std::string digits = key.substr(lb + 1, rb - lb - 1);
    if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos || digits.size() > 6) {
      ctx.error(0, key, "the index must be a number, e.g. " + list_key + "[0]");
      return;
    }
    index = static_cast<size_t>(std::stoul(digits));
    if (rb + 1 >= key.size() || key[rb + 1] != '.') {
      ctx.error(0, key, "name a key of the element, e.g. " + list_key + "[" + digits + "].path");
      return;
    }
    YAML::Node list = f->emit(out);
    if (index > list.size()) {
      ctx.error(0, key,
                fmt::format("index {} is past the end: the list has {} entries (use {} to add one)", index,
                            list.size(), list.size()));
      return;
    }
    if (index == list.size()) list.push_back(YAML::Node(YAML::NodeType::Map));
    YAML::Node cur = list[index];
    const std::vector<std::string> parts = split(key.substr(rb + 2));
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
      if (!cur[parts[i]]) cur[parts[i]] = YAML::Node(YAML::NodeType::Map);
      cur.reset(cur[parts[i]]);
    }
    cur[parts.back()] = value;
    f->parse(out, list, ctx, list_key);
  }

  static void throw_if_errors(const LoadContext& ctx) {
    if (ctx.errors.empty()) return;
    std::string msg;
    for (const auto& e : ctx.errors) {
      if (!msg.empty()) msg += "\n";
      msg += e;
    }
    throw ConfigError(msg);
  }

  std::vector<Field> fields_;
  std::map<std::string, std::vector<FieldInfo>> elem_fields_;
  std::string include_key_;
};

// Reads a YAML file; on failure records the error in ctx and returns a null node.
YAML::Node read_yaml_file(const std::string& path, LoadContext& ctx);
// Resolves `rel` against the directory of `base_file` (absolute paths are returned unchanged).
std::string resolve_relative(const std::string& base_file, const std::string& rel);

template <class T>
void Schema<T>::load_file_into(const std::string& path, T& out, LoadContext& ctx, int depth) const {
  std::string saved = ctx.file;
  ctx.file = path;
  YAML::Node root = read_yaml_file(path, ctx);
  if (root.IsDefined() && !root.IsNull()) {
    if (!root.IsMap()) {
      ctx.error(detail::node_line(root), "(top level)",
                "expected a map of keys, found " + detail::node_kind(root));
    } else {
      if (!include_key_.empty() && root[include_key_]) {
        YAML::Node inc = root[include_key_];
        if (!inc.IsScalar()) {
          ctx.error(detail::node_line(inc), include_key_,
                    "expected a file path, found " + detail::node_kind(inc));
        } else if (depth >= 4) {
          ctx.error(detail::node_line(inc), include_key_, "includes nested too deeply (a cycle?)");
        } else {
          load_file_into(resolve_relative(path, inc.as<std::string>()), out, ctx, depth + 1);
          ctx.file = path;
        }
      }
      walk(root, out, ctx, "", "");
    }
  }
  ctx.file = saved;
}

// ---- common checks ----
template <class V>
std::function<std::string(const V&)> positive() {
  return [](const V& v) { return v > 0 ? "" : std::string("must be > 0"); };
}
template <class V>
std::function<std::string(const V&)> non_negative() {
  return [](const V& v) { return v >= 0 ? "" : std::string("must be >= 0"); };
}
template <class V>
std::function<std::string(const V&)> in_range(V lo, V hi) {
  return
      [lo, hi](const V& v) { return (v >= lo && v <= hi) ? "" : fmt::format("must be in [{}, {}]", lo, hi); };
}
std::function<std::string(const std::string&)> one_of(std::vector<std::string> choices);
std::function<std::string(const std::string&)> non_empty();

}  // namespace pcmoe::config
