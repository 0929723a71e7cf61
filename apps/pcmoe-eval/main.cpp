// pcmoe-eval: held-out loss and bits per byte of a checkpoint or exported model, printed as one
// JSON object on stdout. Thin: parse CLI -> load config -> evaluate.
#include <cstdio>

#include "common/app_main.h"
#include "common/cli.h"
#include "common/log.h"
#include "common/run_config.h"
#include "data/loader.h"
#include "model/compat.h"
#include "train/checkpoint.h"
#include "train/evaluate.h"

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
    model::set_threads(cfg.run.threads);
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
    const torch::Device device = model::parse_device(cfg.run.device);
    model::Backbone backbone(cfg.model, 1);
    model::ExpertShard experts(cfg.model, cfg.train.expert_seed, [](int, int) { return true; });
    const std::string path = args.get("checkpoint");
    TensorFile file = train::load_checkpoint(path, cfg.model);
    train::load_model_weights(file, backbone, experts);
    backbone->to(device);
    experts.to(device);
    model::LocalDispatcher dispatcher(experts);
    auto heldout = data::heldout_batches(cfg.data, batches, cfg.train.batch_size, cfg.model.seq_len);
    auto r = train::evaluate(backbone, dispatcher, heldout, device, cfg.train.dtype == "bf16");
    JsonObject out;
    out.add("checkpoint", path).add("step", train::meta_int(file, "step", -1)).add("loss", r.loss);
    out.add("bpb", r.bits_per_byte).add("tokens", r.tokens).add("byte_targets", r.byte_targets);
    out.add("batches", static_cast<int64_t>(heldout.size()));
    std::printf("%s\n", out.str().c_str());
    return 0;
  });
}
