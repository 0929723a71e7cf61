// Catch2 entry point shared by the test executables: sets libtorch-free process state (signals,
// quiet logs) before running. Tags select the ctest label (see tests/CMakeLists.txt).
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include "common/log.h"

int main(int argc, char** argv) {
  pcmoe::log::Options opts;
  opts.proc = "test";
  opts.level = pcmoe::log::Level::error;
  if (const char* lvl = std::getenv("PCMOE_TEST_LOG")) opts.level = pcmoe::log::parse_level(lvl);
  pcmoe::log::init(opts);
  return Catch::Session().run(argc, argv);
}
