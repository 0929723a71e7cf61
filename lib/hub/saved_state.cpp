// Reading back hub_state.json (see saved_state.h).
#include "hub/saved_state.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <cmath>

#include "common/error.h"
#include "common/fs.h"

namespace pcmoe::hub {
namespace {

class Reader {
 public:
  explicit Reader(std::string path) : path_(std::move(path)) {}

  [[noreturn]] void fail(const std::string& what) const {
    throw ConfigError(
        fmt::format("{}: {} (the hub's saved state; move it away, or start over with "
                    "--set hub.resume=false)",
                    path_, what));
  }

  YAML::Node field(const YAML::Node& n, const std::string& key, const std::string& where = "") const {
    YAML::Node v = n[key];
    if (!v) fail(fmt::format("field '{}{}' is missing", where, key));
    return v;
  }

  template <class T>
  T get(const YAML::Node& n, const std::string& key, const std::string& where = "") const {
    YAML::Node v = field(n, key, where);
    try {
      return v.as<T>();
    } catch (const YAML::Exception&) {
      fail(fmt::format("field '{}{}' has the wrong type", where, key));
    }
  }

  // A number that was written as null (NaN/Inf) reads as `fallback`.
  double number(const YAML::Node& n, const std::string& key, double fallback,
                const std::string& where) const {
    YAML::Node v = field(n, key, where);
    if (v.IsNull()) return fallback;
    double d = get<double>(n, key, where);
    return std::isfinite(d) ? d : fallback;
  }

 private:
  std::string path_;
};

}  // namespace

std::optional<SavedHubState> read_saved_hub_state(const std::string& path) {
  if (!fs::exists(path)) return std::nullopt;
  Reader r(path);
  std::string text;
  try {
    text = fs::read_file(path);
  } catch (const Error& e) {
    r.fail(fmt::format("cannot be read ({})", e.what()));
  }
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    r.fail(fmt::format("is not valid JSON ({})", e.msg));
  }
  if (!root.IsMap()) r.fail("is not a JSON object");
  SavedHubState s;
  s.path = path;
  s.run_id = r.get<std::string>(root, "run_id");
  s.state = r.get<std::string>(root, "state");
  s.saved_at = r.get<std::string>(root, "saved_at");
  s.step = r.get<int64_t>(root, "step");
  s.total_steps = r.get<int64_t>(root, "total_steps");
  s.model_hash = r.get<std::string>(root, "model_hash");
  s.seed = r.get<uint64_t>(root, "seed");
  s.steps_per_turn = r.get<int64_t>(root, "steps_per_turn");
  s.round = r.get<uint64_t>(root, "round");
  s.turn_index = r.get<uint64_t>(root, "turn_index");
  s.turns_issued = r.get<uint64_t>(root, "turns_issued");
  s.round_order = r.get<std::vector<uint32_t>>(root, "round_order");
  s.pool_step = r.get<int64_t>(root, "pool_step");
  s.snapshot_id = r.get<uint64_t>(root, "snapshot_id");
  if (s.step < 0) r.fail(fmt::format("step {} is negative", s.step));
  YAML::Node load = r.field(root, "load");
  s.load_steps = r.get<uint64_t>(load, "steps", "load.");
  s.load_running_counts = r.get<std::vector<std::vector<uint64_t>>>(load, "running_counts", "load.");
  YAML::Node parties = r.field(root, "parties");
  if (!parties.IsSequence()) r.fail("field 'parties' is not a list");
  for (size_t i = 0; i < parties.size(); ++i) {
    const YAML::Node p = parties[i];
    const std::string where = fmt::format("parties[{}].", i);
    SavedPartyTotals t;
    t.id = r.get<std::string>(p, "id", where);
    t.totals.steps_done = r.get<int64_t>(p, "steps_done", where);
    t.totals.tokens = r.get<uint64_t>(p, "tokens", where);
    t.totals.last_loss = r.number(p, "last_loss", -1, where);
    t.totals.last_eval_loss = r.number(p, "last_eval_loss", -1, where);
    t.totals.peak_memory_bytes = r.get<uint64_t>(p, "peak_memory_bytes", where);
    t.totals.bytes_sent = r.get<uint64_t>(p, "bytes_sent", where);
    t.totals.bytes_received = r.get<uint64_t>(p, "bytes_received", where);
    s.parties.push_back(std::move(t));
  }
  return s;
}

}  // namespace pcmoe::hub
