// Generated README sections (see readme_section.h).
#include "readme_section.h"

#include <catch2/catch.hpp>

#include <cstdlib>

#include "common/fs.h"
#include "test_util.h"

namespace pcmoe::test {

void check_readme_section(const std::string& begin, const std::string& end, const std::string& generated) {
  const std::string path = source_dir() + "/README.md";
  std::string readme = fs::read_file(path);
  auto b = readme.find(begin);
  auto e = readme.find(end);
  REQUIRE(b != std::string::npos);
  REQUIRE(e != std::string::npos);
  b += begin.size();
  REQUIRE(b <= e);
  if (std::getenv("PCMOE_WRITE_REFERENCE")) {
    readme = readme.substr(0, b) + generated + readme.substr(e);
    fs::atomic_write(path, readme);
    WARN("README.md section rewritten: " << begin);
    return;
  }
  CHECK(readme.substr(b, e - b) == generated);
}

}  // namespace pcmoe::test
