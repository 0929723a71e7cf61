// Markdown configuration reference from the schemas (see config_reference.h).
#include "common/config_reference.h"

#include <fmt/format.h>

#include "common/hub_config.h"
#include "common/party_config.h"
#include "common/run_config.h"

namespace pcmoe {
namespace {

std::string escape(std::string s) {
  std::string out;
  for (char c : s) {
    if (c == '|') {
      out += "\\|";
    } else if (c == '\n') {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

template <class T>
std::string table(const std::string& title, const config::Schema<T>& schema, const T& defaults,
                  const std::string& skip_prefix_a = "", const std::string& skip_prefix_b = "") {
  std::string s = "### " + title + "\n\n| key | type | default | meaning |\n|---|---|---|---|\n";
  for (const auto& f : schema.field_infos(defaults)) {
    auto starts = [&](const std::string& p) { return !p.empty() && f.key.rfind(p, 0) == 0; };
    if (starts(skip_prefix_a) || starts(skip_prefix_b)) continue;
    s += fmt::format("| `{}` | {} | `{}` | {} |\n", f.key, f.type, escape(f.default_value), escape(f.doc));
  }
  return s + "\n";
}

}  // namespace

std::string config_reference_markdown() {
  std::string s;
  s += table("Preset (`configs/models/*.yaml`): `model:` and `train:`, shared by every participant",
             preset_schema(), Preset{});
  PartyConfig party;
  party.run.seed = 0;
  party.run.out_dir = "runs/party";
  s += table("Party (`configs/party-*.yaml`, `pcmoe-party`): besides `preset:`", party_schema(), party,
             "model.", "train.");
  s += table("Hub (`configs/hub.yaml`, `pcmoe-hub`, `pcmoe-ctl`): besides `preset:`", hub_schema(),
             HubConfig{}, "model.", "train.");
  s += table(
      "Central (`configs/central-*.yaml`, `configs/isolated-*.yaml`, `pcmoe-central`, `pcmoe-eval`): besides "
      "`preset:`",
      central_schema(), CentralConfig{}, "model.", "train.");
  return s;
}

}  // namespace pcmoe
