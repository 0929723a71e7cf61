// The README's configuration reference is generated from the loaders' field lists and must not
// drift: this test compares it with the generated text. To regenerate after changing a schema:
//   PCMOE_WRITE_REFERENCE=1 build/tests/pcmoe_tests_core "[config-reference]"
#include <catch2/catch.hpp>

#include "common/config_reference.h"
#include "readme_section.h"

TEST_CASE("the README's configuration reference equals the loaders' field lists",
          "[unit][config][config-reference]") {
  pcmoe::test::check_readme_section(
      "<!-- config-reference:begin (generated: see tests/common/config_reference_test.cpp) -->\n",
      "<!-- config-reference:end -->", pcmoe::config_reference_markdown());
}
