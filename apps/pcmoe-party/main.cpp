// pcmoe-party: one party of a PC-MoE federation — its private backbone, its data, its shard of
// the expert pool, an expert service for the other parties. Thin: parse CLI -> load config ->
// set up logging -> run.
#include <cstdio>

#include "common/app_main.h"
#include "common/cli.h"
#include "common/log.h"
#include "common/party_config.h"
#include "common/signals.h"
#include "party/daemon.h"

using namespace pcmoe;

int main(int argc, char** argv) {
  return run_main("pcmoe-party", [&] {
    cli::Spec spec{
        "pcmoe-party", "Run one party of a PC-MoE federation (connects to pcmoe-hub).", true, {}, {}};
    auto args = cli::parse(argc, argv, spec);
    if (args.help) {
      std::fputs(cli::usage(spec).c_str(), stdout);
      return 0;
    }
    PartyConfig cfg = load_party_config(args.config, args.sets);
    if (args.print_config) {
      std::fputs(party_schema().to_yaml(cfg).c_str(), stdout);
      return 0;
    }
    log::init({"party-" + cfg.party.id, log::parse_level(cfg.run.log_level), cfg.run.log_file});
    signals::install();
    return party::run_party(cfg);
  });
}
