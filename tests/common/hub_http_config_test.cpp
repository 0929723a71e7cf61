// hub.http and hub.http_allow_remote: off by default; HOST:PORT with an IP literal or localhost;
// a non-loopback address only with http_allow_remote; every refusal names file, line and key.
#include <catch2/catch.hpp>

#include "common/hub_config.h"
#include "test_util.h"

using namespace pcmoe;

namespace {

std::string hub_yaml(const std::string& extra) {
  return "model:\n  d_model: 32\n  n_heads: 2\nhub:\n  parties:\n    - id: a\n  insecure: true\n" + extra;
}

}  // namespace

TEST_CASE("hub.http: off by default, loopback addresses, ports", "[unit][config]") {
  test::TempDir dir;
  CHECK(load_hub_config(dir.write("h.yaml", hub_yaml("")), {}).hub.http.empty());
  CHECK(load_hub_config(dir.write("h.yaml", hub_yaml("  http: 127.0.0.1:8080\n")), {}).hub.http ==
        "127.0.0.1:8080");
  auto a = parse_http_address("127.0.0.1:0");
  CHECK(a.host == "127.0.0.1");
  CHECK(a.port == 0);
  CHECK(a.loopback);
  a = parse_http_address("localhost:9100");
  CHECK(a.host == "127.0.0.1");
  CHECK(a.loopback);
  a = parse_http_address("[::1]:9100");
  CHECK(a.host == "::1");
  CHECK(a.url_host() == "[::1]");
  CHECK(a.loopback);
  CHECK_FALSE(parse_http_address("0.0.0.0:9100").loopback);
  CHECK_FALSE(parse_http_address("[::]:9100").loopback);
  CHECK_FALSE(parse_http_address("10.1.2.3:9100").loopback);
  CHECK(parse_http_address("127.8.9.10:1").loopback);
}

TEST_CASE("hub.http: bad addresses and non-loopback ones are refused, naming file, line and key",
          "[unit][config]") {
  test::TempDir dir;
  auto err = [&](const std::string& extra, const std::vector<std::string>& sets = {}) {
    try {
      load_hub_config(dir.write("h.yaml", hub_yaml(extra)), sets);
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  CHECK_THAT(err("  http: 8080\n"), Catch::Contains("h.yaml:8: key 'hub.http'") &&
                                        Catch::Contains("expected HOST:PORT such as 127.0.0.1:8080"));
  CHECK_THAT(err("  http: 127.0.0.1:99999\n"), Catch::Contains("port '99999'"));
  CHECK_THAT(err("  http: status.example.org:80\n"), Catch::Contains("no host names"));
  CHECK_THAT(err("  http: 300.1.1.1:80\n"), Catch::Contains("must be an IPv4 address"));
  CHECK_THAT(err("  http: 0.0.0.0:8080\n"), Catch::Contains("h.yaml:8: key 'hub.http'") &&
                                                Catch::Contains("'0.0.0.0:8080' is not a loopback address") &&
                                                Catch::Contains("hub.http_allow_remote: true"));
  CHECK_THAT(err("", {"hub.http=192.168.1.5:8080"}), Catch::Contains("--set") && Catch::Contains("hub.http"));
  CHECK(err("  http: 0.0.0.0:8080\n  http_allow_remote: true\n").empty());
}
