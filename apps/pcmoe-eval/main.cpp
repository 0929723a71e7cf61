// pcmoe-eval: held-out loss and bits per byte of a checkpoint or exported model, printed as one
// JSON object on stdout. Thin: parse CLI -> load config -> evaluate (lib/train/eval_file.h).
#include <cstdio>

#include "common/app_main.h"
#include "common/cli.h"
#include "common/log.h"
#include "common/run_config.h"
#include "train/eval_file.h"

using namespace pcmoe;

int main(int argc, char** argv) {
  return run_main("pcmoe-eval", [&] {
    cli::Spec spec{
        "pcmoe-eval",
        "Evaluate a checkpoint or exported model on held-out text: prints {loss, bpb, ...} as JSON.\n"
        "The model comes from the config's preset; data from the config's data block, or from --data.",
        true,
        {{"checkpoint", true, false, "checkpoint or exported model file (required)"},
         {"data", true, true,
          "a data source path (file or folder, format auto); repeatable; replaces data.sources"},
         {"batches", true, false, "held-out batches to evaluate (default: train.eval_batches)"}},
        {}};
    auto args = cli::parse(argc, argv, spec);
    if (args.help) {
      std::fputs(cli::usage(spec).c_str(), stdout);
      return 0;
    }
    if (!args.has("checkpoint"))
      throw ConfigError("pcmoe-eval: --checkpoint PATH is required\n" + cli::usage(spec));
    CentralConfig cfg = load_central_config(args.config, args.sets);
    if (args.has("data")) {
      cfg.data.sources.clear();
      for (const auto& path : args.values.at("data")) {
        DataSource src;
        src.path = path;
        cfg.data.sources.push_back(src);
      }
      validate(cfg.data, config::Origins{}, "--data");
    } else {
      validate(cfg.data, config::Origins{}, "data");
    }
    if (args.print_config) {
      std::fputs(central_schema().to_yaml(cfg).c_str(), stdout);
      return 0;
    }
    log::init({"eval", log::parse_level(cfg.run.log_level), cfg.run.log_file});
    int batches = cfg.train.eval_batches;
    if (args.has("batches")) {
      try {
        batches = std::stoi(args.get("batches"));
      } catch (...) {
        batches = 0;
      }
      if (batches <= 0)
        throw ConfigError("pcmoe-eval: --batches must be a positive integer, got '" + args.get("batches") +
                          "'");
    }
    const JsonObject out = train::evaluate_model_file(cfg, args.get("checkpoint"), batches);
    std::printf("%s\n", out.str().c_str());
    return 0;
  });
}
