// pcmoe-attack: a curious host's attacks on the rows it received (privacy audits; README
// "Privacy"). Thin: parse CLI -> load the attacker's party config -> run (lib/audit/attack_job.h)
// -> print the tables, write the JSON.
#include <cstdio>

#include "audit/attack_job.h"
#include "common/app_main.h"
#include "common/cli.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/party_config.h"
#include "model/compat.h"

using namespace pcmoe;

namespace {

// "a=path" -> {a, path}.
std::pair<std::string, std::string> victim_file(const std::string& flag, const std::string& v) {
  const auto eq = v.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == v.size())
    throw ConfigError("pcmoe-attack: --" + flag +
                      " takes VICTIM=FILE (e.g. a=runs/x/party-a/audit/sent.cap), got '" + v + "'");
  return {v.substr(0, eq), v.substr(eq + 1)};
}

int positive(const cli::Args& args, const std::string& flag, int fallback) {
  if (!args.has(flag)) return fallback;
  int v = 0;
  try {
    v = std::stoi(args.get(flag));
  } catch (...) {
  }
  if (v <= 0)
    throw ConfigError("pcmoe-attack: --" + flag + " must be a positive integer, got '" + args.get(flag) +
                      "'");
  return v;
}

double non_negative(const cli::Args& args, const std::string& flag) {
  if (!args.has(flag)) return 0.0;
  double v = -1;
  try {
    v = std::stod(args.get(flag));
  } catch (...) {
  }
  if (!(v >= 0) || v > 1e6)
    throw ConfigError("pcmoe-attack: --" + flag + " must be a number >= 0, got '" + args.get(flag) + "'");
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  return run_main("pcmoe-attack", [&] {
    cli::Spec spec{
        "pcmoe-attack",
        "A curious host's attacks on the rows it received (privacy audits). --config is the attacker's own\n"
        "party config (its preset and data; keys are not read).",
        true,
        {{"model", true, false, "the attacker's exported model (its model.pcmoe) (required)"},
         {"capture", true, false,
          "the attacker's capture of what it received (audit/received.cap) (required)"},
         {"truth", true, true,
          "VICTIM=FILE: a victim's sent.cap, to score the attacks (repeatable; required)"},
         {"victim-model", true, true, "VICTIM=FILE: a victim's exported model, for the white-box bound"},
         {"batches", true, false, "the attacker's own batches to train on (default 48)"},
         {"max-rows", true, false,
          "victim rows scored per pair and layer, the latest captured (default 8000)"},
         {"epochs", true, false, "classifier epochs (default 6)"},
         {"assume-clip", true, false,
          "the victims' privacy.row_clip (the attacker trains on rows defended alike)"},
         {"assume-noise", true, false, "the victims' privacy.row_noise_std"},
         {"out", true, false, "write the report as JSON to this file"}},
        {}};
    auto args = cli::parse(argc, argv, spec);
    if (args.help) {
      std::fputs(cli::usage(spec).c_str(), stdout);
      return 0;
    }
    for (const char* f : {"model", "capture", "truth"}) {
      if (!args.has(f))
        throw ConfigError(std::string("pcmoe-attack: --") + f + " is required\n" + cli::usage(spec));
    }
    audit::AttackOptions o;
    o.attacker = load_party_config(args.config, args.sets, /*check_data=*/true, /*read_keys=*/false);
    if (args.print_config) {
      std::fputs(party_schema().to_yaml(o.attacker).c_str(), stdout);
      return 0;
    }
    log::init({"attack", log::parse_level(o.attacker.run.log_level), ""});
    o.attacker_model = args.get("model");
    o.capture = args.get("capture");
    for (const auto& v : args.values.at("truth")) o.truth.insert(victim_file("truth", v));
    if (args.has("victim-model")) {
      for (const auto& v : args.values.at("victim-model"))
        o.victim_models.insert(victim_file("victim-model", v));
    }
    o.batches = positive(args, "batches", o.batches);
    o.max_rows = positive(args, "max-rows", static_cast<int>(o.max_rows));
    o.classifier.epochs = positive(args, "epochs", o.classifier.epochs);
    o.assume_clip = non_negative(args, "assume-clip");
    o.assume_noise = non_negative(args, "assume-noise");
    for (const auto& f : {o.attacker_model, o.capture}) {
      if (!fs::exists(f)) throw ConfigError("pcmoe-attack: " + f + ": no such file");
    }
    model::set_threads(o.attacker.run.threads);
    const auto report = audit::run_attacks(o);
    std::fputs(audit::format_report(report).c_str(), stdout);
    for (const auto& [victim, n] : report.unmatched)
      std::printf("(%lld requests of %s had no truth record and were not scored)\n",
                  static_cast<long long>(n), victim.c_str());
    if (args.has("out")) fs::atomic_write(args.get("out"), audit::report_json(report, o).str() + "\n", 0644);
    return 0;
  });
}
