// pcmoe-central: the single-process trainer — the centralised baseline (all data, every expert
// in one process), the isolated baseline (one party's data), and mode protocol (PC-MoE simulated
// in one process). Thin: parse CLI -> load config -> set up logging -> run.
#include <cstdio>

#include "common/app_main.h"
#include "common/cli.h"
#include "common/json.h"
#include "common/log.h"
#include "common/run_config.h"
#include "common/signals.h"
#include "train/central.h"
#include "train/protocol_sim.h"

using namespace pcmoe;

int main(int argc, char** argv) {
  return run_main("pcmoe-central", [&] {
    cli::Spec spec{"pcmoe-central",
                   "Train an MoE language model in one process (central/isolated baseline, or the PC-MoE "
                   "protocol simulated).",
                   true,
                   {},
                   {}};
    auto args = cli::parse(argc, argv, spec);
    if (args.help) {
      std::fputs(cli::usage(spec).c_str(), stdout);
      return 0;
    }
    CentralConfig cfg = load_central_config(args.config, args.sets);
    if (args.print_config) {
      std::fputs(central_schema().to_yaml(cfg).c_str(), stdout);
      return 0;
    }
    log::init({"central", log::parse_level(cfg.run.log_level), cfg.run.log_file});
    signals::install();
    train::TrainSummary s = cfg.mode == "protocol" ? train::run_protocol_sim(cfg) : train::run_central(cfg);
    JsonObject out;
    out.add("mode", cfg.mode).add("steps", s.steps_done).add("last_loss", s.last_loss);
    out.add("eval_loss", s.eval_loss).add("eval_bpb", s.eval_bpb).add("wall_s", s.wall_s);
    out.add("tokens_per_s", s.tokens_per_s).add("peak_memory_bytes", s.peak_memory_bytes);
    out.add("optimizer_state_params", s.optimizer_state_params);
    out.add("peak_reserved_bytes", s.peak_reserved_bytes)
        .add("footprint_estimate_bytes", s.footprint_estimate_bytes);
    out.add("interrupted", s.interrupted).add("checkpoint", s.checkpoint_path).add("model", s.export_path);
    std::printf("%s\n", out.str().c_str());
    return 0;
  });
}
