// Command-line parsing shared by every binary (lib/common/cli.h): --version (the version line,
// with the protocol version of lib/proto), --config/--set/--print-config and bad usage.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "common/cli.h"
#include "common/error.h"
#include "common/version.h"
#include "proto/messages.h"

using namespace pcmoe;

namespace {

cli::Args parse(std::vector<std::string> words, const cli::Spec& spec) {
  std::vector<char*> argv;
  for (auto& w : words) argv.push_back(w.data());
  return cli::parse(static_cast<int>(argv.size()), argv.data(), spec);
}

cli::Spec spec() {
  cli::Spec s;
  s.program = "pcmoe-test";
  s.summary = "a test";
  s.flags = {{"json", false, false, "json"}};
  return s;
}

}  // namespace

TEST_CASE("cli: --version throws VersionRequested with the version line, even without --config",
          "[unit][cli]") {
  try {
    parse({"prog", "--version"}, spec());
    FAIL("no VersionRequested");
  } catch (const cli::VersionRequested& v) {
    const std::string line = v.what();
    CHECK(line == version::line("pcmoe-test"));
    CHECK_THAT(line, Catch::StartsWith("pcmoe-test " + version::project() + " (git "));
    CHECK_THAT(line, Catch::EndsWith(
                         fmt::format(", protocol {}.{})", proto::kProtocolMajor, proto::kProtocolMinor)));
  }
  // After other arguments too; a bad option before it is reported first.
  CHECK_THROWS_AS(parse({"prog", "--config", "x.yaml", "--version"}, spec()), cli::VersionRequested);
  CHECK_THROWS_AS(parse({"prog", "--bogus", "--version"}, spec()), ConfigError);
  CHECK_THAT(cli::usage(spec()), Catch::Contains("--version"));
}

TEST_CASE("version: the protocol version recorded at configure time is lib/proto's", "[unit][cli]") {
  CHECK(version::protocol_major() == static_cast<int>(proto::kProtocolMajor));
  CHECK(version::protocol_minor() == static_cast<int>(proto::kProtocolMinor));
  CHECK(!version::git_describe().empty());
}

TEST_CASE("cli: --config, --set, flags and usage errors", "[unit][cli]") {
  auto a = parse({"prog", "--config", "c.yaml", "--set", "a=1", "--set=b=2", "--json"}, spec());
  CHECK(a.config == "c.yaml");
  CHECK(a.sets == std::vector<std::string>{"a=1", "b=2"});
  CHECK(a.has("json"));
  CHECK_THROWS_WITH(parse({"prog"}, spec()), Catch::Contains("--config FILE is required"));
  CHECK_THROWS_WITH(parse({"prog", "--config", "c", "--json", "--json"}, spec()),
                    Catch::Contains("--json given twice"));
  CHECK_THROWS_WITH(parse({"prog", "--config"}, spec()), Catch::Contains("--config needs a value"));
}
