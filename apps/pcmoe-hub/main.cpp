// pcmoe-hub: the federation's coordinator — membership, expert placement, the turn schedule,
// router statistics, expert-pool snapshots and status (DESIGN.md "Roles"). Never on the
// activation path. Thin: parse CLI -> load config -> set up logging -> run (lib/hub).
#include <cstdio>

#include "common/app_main.h"
#include "common/cli.h"
#include "common/hub_config.h"
#include "common/log.h"
#include "common/signals.h"
#include "hub/hub_server.h"
#include "net/context.h"

using namespace pcmoe;

int main(int argc, char** argv) {
  return run_main("pcmoe-hub", [&] {
    cli::Spec spec{
        "pcmoe-hub",
        "Run the hub of a PC-MoE federation (one per federation). SIGINT/SIGTERM: final snapshot, stop "
        "the parties, exit 0; a second signal exits at once.",
        true,
        {},
        {}};
    auto args = cli::parse(argc, argv, spec);
    if (args.help) {
      std::fputs(cli::usage(spec).c_str(), stdout);
      return 0;
    }
    HubConfig cfg = load_hub_config(args.config, args.sets);
    if (args.print_config) {
      std::fputs(hub_schema().to_yaml(cfg).c_str(), stdout);
      return 0;
    }
    log::init({"hub", log::parse_level(cfg.hub.log_level), cfg.hub.log_file});
    signals::install();
    hub::HubServer server(cfg, net::default_context());
    return server.run();
  });
}
