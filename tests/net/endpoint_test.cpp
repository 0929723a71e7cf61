// Tests of endpoint validation and advertising, and of CURVE key files (no sockets).
#include "net/endpoint.h"

#include <sys/stat.h>

#include <catch2/catch.hpp>

#include "common/error.h"
#include "net/curve.h"
#include "test_util.h"

using namespace pcmoe;
using namespace pcmoe::net;

namespace {
std::string endpoint_error(const std::string& s, EndpointUse use) {
  try {
    parse_endpoint(s, use);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST_CASE("endpoints: accepted forms", "[unit][net]") {
  auto b = EndpointUse::bind;
  auto c = EndpointUse::connect;
  CHECK(parse_endpoint("tcp://127.0.0.1:7001", c).port == "7001");
  CHECK(parse_endpoint("tcp://hub.example.org:7000", c).host == "hub.example.org");
  CHECK(parse_endpoint("tcp://[::1]:7000", c).host == "[::1]");
  CHECK(parse_endpoint("tcp://*:7000", b).wildcard_host());
  CHECK(parse_endpoint("tcp://127.0.0.1:*", b).ephemeral_port());
  CHECK(parse_endpoint("tcp://0.0.0.0:0", b).ephemeral_port());
  CHECK(parse_endpoint("ipc:///tmp/pcmoe.sock", c).transport == Transport::ipc);
  CHECK(parse_endpoint("ipc://@abstract", c).path == "@abstract");
  CHECK(parse_endpoint("inproc://experts", c).transport == Transport::inproc);
  CHECK(parse_endpoint("tcp://10.0.0.1:7001", c).str() == "tcp://10.0.0.1:7001");
}

TEST_CASE("endpoints: errors name the endpoint and the problem", "[unit][net]") {
  auto b = EndpointUse::bind;
  auto c = EndpointUse::connect;
  CHECK(endpoint_error("127.0.0.1:7000", c) ==
        "bad endpoint '127.0.0.1:7000': expected tcp://, ipc:// or inproc://");
  CHECK_THAT(endpoint_error("udp://h:1", c), Catch::Contains("unknown transport 'udp'"));
  CHECK_THAT(endpoint_error("tcp://host", c), Catch::Contains("expected tcp://host:port"));
  CHECK_THAT(endpoint_error("tcp://*:7000", c), Catch::Contains("cannot connect to '*'"));
  CHECK_THAT(endpoint_error("tcp://h:*", c), Catch::Contains("ephemeral port"));
  CHECK_THAT(endpoint_error("tcp://h:70000", c), Catch::Contains("invalid port '70000'"));
  CHECK_THAT(endpoint_error("tcp://h:0x10", b), Catch::Contains("invalid port"));
  CHECK_THAT(endpoint_error("tcp://h:0", c), Catch::Contains("ephemeral"));
  CHECK_THAT(endpoint_error("tcp://bad host:1", c), Catch::Contains("invalid host 'bad host'"));
  CHECK_THAT(endpoint_error("tcp://[zz]:1", c), Catch::Contains("invalid host"));
  CHECK_THAT(endpoint_error("tcp://:1", c), Catch::Contains("invalid host"));
  CHECK_THAT(endpoint_error("ipc://", c), Catch::Contains("empty ipc path"));
  CHECK_THAT(endpoint_error("ipc://" + std::string(200, 'a'), b), Catch::Contains("longer than 107"));
  CHECK_THAT(endpoint_error("inproc://", c), Catch::Contains("empty inproc name"));
}

TEST_CASE("endpoints: advertised form of a bound endpoint", "[unit][net]") {
  CHECK(advertised_endpoint("tcp://127.0.0.1:41000") == "tcp://127.0.0.1:41000");
  CHECK(advertised_endpoint("tcp://0.0.0.0:7001", "party-a.example") == "tcp://party-a.example:7001");
  CHECK(advertised_endpoint("tcp://[::]:7001", "fd00::5") == "tcp://[fd00::5]:7001");
  CHECK(advertised_endpoint("tcp://127.0.0.1:7001", "10.1.2.3") == "tcp://10.1.2.3:7001");
  std::string host_based = advertised_endpoint("tcp://0.0.0.0:7001");
  CHECK(host_based.rfind("tcp://", 0) == 0);
  CHECK(host_based.find("0.0.0.0") == std::string::npos);
  CHECK(advertised_endpoint("ipc:///tmp/x.sock", "ignored") == "ipc:///tmp/x.sock");
  CHECK_THROWS_AS(advertised_endpoint("tcp://127.0.0.1:*"), ConfigError);  // not bound yet
}

TEST_CASE("CURVE keys: generation and key files", "[unit][net]") {
  REQUIRE(curve_available());
  test::TempDir dir;
  CurveKeyPair kp = generate_keypair();
  CHECK(is_z85_key(kp.public_key));
  CHECK(is_z85_key(kp.secret_key));
  CHECK(public_key_of(kp.secret_key) == kp.public_key);
  CHECK_FALSE(is_z85_key("short"));
  CHECK_FALSE(is_z85_key(std::string(40, '"')));

  std::string secret_path = dir.path() + "/party.key";
  write_key_file(secret_path, kp);
  struct stat st {};
  REQUIRE(::stat(secret_path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  CurveKeyPair back = read_key_file(secret_path);
  CHECK(back.public_key == kp.public_key);
  CHECK(back.secret_key == kp.secret_key);
  CHECK(read_public_key_file(secret_path) == kp.public_key);

  std::string pub_path = dir.path() + "/party.pub";
  write_public_key_file(pub_path, kp.public_key);
  CHECK(read_public_key_file(pub_path) == kp.public_key);
  CHECK_THROWS_WITH(read_key_file(pub_path), Catch::Contains("has no 'secret:' line"));
}

TEST_CASE("CURVE keys: bad key files are config errors naming file and line", "[unit][net]") {
  test::TempDir dir;
  CurveKeyPair a = generate_keypair(), b = generate_keypair();
  auto mismatched = dir.write("m.key", "public: " + a.public_key + "\nsecret: " + b.secret_key + "\n");
  CHECK_THROWS_WITH(read_key_file(mismatched), Catch::Contains("does not match"));
  auto junk = dir.write("j.key", "# comment\n\npublik: " + a.public_key + "\n");
  CHECK_THROWS_WITH(read_public_key_file(junk), Catch::Contains("j.key:3: expected 'public: <key>'"));
  auto short_key = dir.write("s.key", "public: abc\n");
  CHECK_THROWS_WITH(read_public_key_file(short_key), Catch::Contains("s.key:1: public key is not 40 Z85"));
  auto twice = dir.write("t.key", "public: " + a.public_key + "\npublic: " + a.public_key + "\n");
  CHECK_THROWS_WITH(read_public_key_file(twice), Catch::Contains("second 'public' line"));
  CHECK_THROWS_WITH(read_public_key_file(dir.path() + "/none.key"), Catch::Contains("not found"));
  CHECK_THROWS_AS(public_key_of("not a key"), ConfigError);
}
