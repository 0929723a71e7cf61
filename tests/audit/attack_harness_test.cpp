// The privacy audit harness checked on a federation it trains itself (ctest
// pcmoe_tests_torch.attack, tag [attack]): three parties with private backbone seeds capture their
// traffic (audit.capture both), then pcmoe-attack runs as host b against a and c. With the
// victim's backbone (white box) the tokens behind the rows are recovered far above the frequency
// baseline at the first MoE layer; without it (private seeds), the attacks stay near the baseline.
// So the harness can tell leaking from not leaking; the audit itself is bench/privacy_audit.sh.
#include <catch2/catch.hpp>

#include <regex>

#include "common/fs.h"
#include "integration/federation.h"
#include "test_util.h"

using namespace pcmoe;

namespace {

// The top-1 score of `attack` for (victim, layer) in pcmoe-attack's JSON report.
double top1(const std::string& json, const std::string& victim, int layer, const std::string& attack) {
  const std::regex pair("\\{\"victim\":\"" + victim + "\",\"host\":\"b\",\"layer\":" + std::to_string(layer) +
                        ",\"rows\":[0-9]+,\"attacks\":\\{([^]*?)\\}\\}\\}");
  std::smatch m;
  REQUIRE(std::regex_search(json, m, pair));
  const std::string attacks = m[1].str() + "}";
  const std::regex score("\"" + attack + "\":\\{\"top1\":([-0-9.e]+)");
  std::smatch s;
  REQUIRE(std::regex_search(attacks, s, score));
  return std::stod(s[1].str());
}

}  // namespace

TEST_CASE("attack harness: white box far above the baseline, private-seed attacks near it", "[attack]") {
  PCMOE_SKIP_WITHOUT_DEMO_CORPORA();
  constexpr int kSteps = 45;
  test::TempDir dir;
  test::FederationOptions o;
  o.shared = test::tiny_overrides(kSteps, 0);
  o.party = {"audit.capture=both"};
  test::Federation fed(dir.path(), o);
  FED_REQUIRE(fed, fed.start_hub());
  fed.start_parties();
  fed.require_clean_finish(kSteps);
  for (const char* id : {"a", "b", "c"}) {
    CHECK(test::log_events(fed.party_log(id), "audit.capture_on").size() == 2);  // loud: received and sent
  }

  std::vector<std::string> argv = {test::app("pcmoe-attack"), "--config", test::config("party-b.yaml")};
  for (const auto& s : o.shared) argv.insert(argv.end(), {"--set", s});
  const std::string report = dir.path() + "/attack.json";
  argv.insert(argv.end(),
              {"--set", "run.threads=2", "--model", fed.party_dir("b") + "/model.pcmoe", "--capture",
               fed.party_dir("b") + "/audit/received.cap", "--batches", "64", "--out", report});
  for (const char* v : {"a", "c"}) {
    argv.insert(argv.end(), {"--truth", std::string(v) + "=" + fed.party_dir(v) + "/audit/sent.cap"});
    argv.insert(argv.end(), {"--victim-model", std::string(v) + "=" + fed.party_dir(v) + "/model.pcmoe"});
  }
  test::Process attack(argv, dir.path() + "/attack.out", dir.path() + "/attack.err");
  REQUIRE(attack.wait(600000) == 0);
  const std::string json = fs::read_file(report);
  INFO(test::read_or_empty(dir.path() + "/attack.out"));
  for (const char* v : {"a", "c"}) {
    INFO("victim " << v);
    const double freq0 = top1(json, v, 0, "freq");
    CHECK(top1(json, v, 0, "whitebox") >= freq0 + 0.2);
    for (int layer = 0; layer < 4; ++layer) {
      INFO("layer " << layer);
      const double freq = top1(json, v, layer, "freq");
      for (const char* a : {"surrogate", "nearest", "expert", "freq_own"}) {
        INFO(a);
        CHECK(top1(json, v, layer, a) <= freq + 0.05);
      }
    }
  }
  std::printf("attack harness: %s", test::read_or_empty(dir.path() + "/attack.out").c_str());
}
