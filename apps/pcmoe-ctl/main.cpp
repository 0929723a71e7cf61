// pcmoe-ctl: the operator's client of pcmoe-hub (status, pause, resume, checkpoint, snapshot, stop)
// and CURVE key generation (keygen). Thin: parse CLI -> run (lib/hub/ctl.h).
#include <cstdio>

#include "common/app_main.h"
#include "common/cli.h"
#include "common/log.h"
#include "hub/ctl.h"

using namespace pcmoe;

int main(int argc, char** argv) {
  return run_main("pcmoe-ctl", [&] {
    const cli::Spec spec = hub::ctl_spec();
    auto args = cli::parse(argc, argv, spec);
    if (args.help) {
      std::fputs(cli::usage(spec).c_str(), stdout);
      return 0;
    }
    log::init({"ctl", log::Level::warn, ""});
    return hub::run_ctl(args, stdout, stderr);
  });
}
