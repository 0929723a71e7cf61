// The log-event list (lib/common/events.h) is the code's own: every event a PCMOE_* log macro in
// lib/ or apps/ writes is listed, every listed event is written somewhere, names are unique and
// dotted, and the README's event table is the generated one. To regenerate the table:
//   PCMOE_WRITE_REFERENCE=1 build/tests/pcmoe_tests_core "[events]"
#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <map>
#include <regex>
#include <set>
#include <string>

#include "common/events.h"
#include "common/fs.h"
#include "readme_section.h"
#include "test_util.h"

using namespace pcmoe;

namespace {

// Event name -> "file:line" of its first use, for every log macro with a literal name under the
// given source folders (PCMOE_INFO("x"), and PCMOE_LOG(level expression, "x")).
std::map<std::string, std::string> events_in_sources(const std::vector<std::string>& dirs) {
  static const std::regex kUse(
      R"re(PCMOE_(?:DEBUG|INFO|WARN|ERROR)\(\s*"([^"]*)"\s*\)|PCMOE_LOG\([^;"]*,\s*"([^"]*)"\s*\))re");
  std::map<std::string, std::string> found;
  for (const auto& dir : dirs) {
    for (const auto& entry : std::filesystem::recursive_directory_iterator(test::source_dir() + "/" + dir)) {
      const std::string ext = entry.path().extension().string();
      if (!entry.is_regular_file() || (ext != ".cpp" && ext != ".h")) continue;
      const std::string text = fs::read_file(entry.path().string());
      for (auto it = std::sregex_iterator(text.begin(), text.end(), kUse); it != std::sregex_iterator();
           ++it) {
        const std::string name = (*it)[1].matched ? (*it)[1].str() : (*it)[2].str();
        const auto line = 1 + std::count(text.begin(), text.begin() + it->position(), '\n');
        const std::string rel = std::filesystem::relative(entry.path(), test::source_dir()).string();
        found.emplace(name, rel + ":" + std::to_string(line));
      }
    }
  }
  return found;
}

}  // namespace

TEST_CASE("events: every log event in lib/ and apps/ is in the list, and every listed one is used",
          "[unit][events]") {
  const auto used = events_in_sources({"lib", "apps"});
  REQUIRE(used.size() > 50);  // the scan finds the macros at all
  std::set<std::string> listed;
  for (const auto& e : events::all()) {
    INFO(e.name);
    CHECK(listed.insert(std::string(e.name)).second);  // unique
    CHECK(std::regex_match(std::string(e.name), std::regex("[a-z]+\\.[a-z0-9_]+")));
    CHECK(!e.meaning.empty());
  }
  for (const auto& [name, where] : used) {
    INFO(where << " writes log event '" << name << "': add it to lib/common/events.cpp");
    CHECK(listed.count(name) == 1);
  }
  for (const auto& name : listed) {
    INFO("'" << name << "' is listed in lib/common/events.cpp but no log macro writes it");
    CHECK(used.count(name) == 1);
  }
}

TEST_CASE("events: the README's event table is generated from the list", "[unit][events]") {
  test::check_readme_section("<!-- log-events:begin (generated: see tests/common/events_test.cpp) -->\n",
                             "<!-- log-events:end -->", events::markdown());
}
