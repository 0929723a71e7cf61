// The README's configuration reference is generated from the loaders' field lists and must not
// drift: this test compares it with the generated text. To regenerate after changing a schema:
//   PCMOE_WRITE_REFERENCE=1 build/tests/pcmoe_tests_core "[config-reference]"
#include <catch2/catch.hpp>

#include <cstdlib>

#include "common/config_reference.h"
#include "common/fs.h"
#include "test_util.h"

namespace {
const char* kBegin =
    "<!-- config-reference:begin (generated: see tests/common/config_reference_test.cpp) -->\n";
const char* kEnd = "<!-- config-reference:end -->";
}  // namespace

TEST_CASE("the README's configuration reference equals the loaders' field lists",
          "[unit][config][config-reference]") {
  const std::string path = pcmoe::test::source_dir() + "/README.md";
  std::string readme = pcmoe::fs::read_file(path);
  auto b = readme.find(kBegin);
  auto e = readme.find(kEnd);
  REQUIRE(b != std::string::npos);
  REQUIRE(e != std::string::npos);
  b += std::string(kBegin).size();
  const std::string generated = pcmoe::config_reference_markdown();
  if (std::getenv("PCMOE_WRITE_REFERENCE")) {
    readme = readme.substr(0, b) + generated + readme.substr(e);
    pcmoe::fs::atomic_write(path, readme);
    WARN("README.md configuration reference rewritten");
    return;
  }
  CHECK(readme.substr(b, e - b) == generated);
}
