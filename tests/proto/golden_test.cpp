// Golden encoded messages (proto/golden/<version>/*.bin): every file of every version decodes,
// forever, to the values of its sample (golden_messages(), plus golden_messages_1_1() from 1.1 on,
// golden_messages_1_2() from 1.2 on),
// and today's encoder reproduces the current version's files byte for byte. If either fails, the
// wire format changed: that needs a version bump (PROTOCOL.md, "Versioning"), not new files for an
// old version. The hidden test "[.golden-write]" writes the current version's files:
//   ./pcmoe_tests_core "[.golden-write]".
#include <catch2/catch.hpp>
#include <filesystem>

#include "common/fs.h"
#include "proto/codec.h"
#include "proto/frame_file.h"
#include "proto_test_util.h"

using namespace pcmoe;
using namespace pcmoe::proto;

namespace {

constexpr const char* kCurrent = "1.2";  // the version today's encoder writes

std::string golden_path(const std::string& version, const std::string& stem) {
  return test::golden_dir(version) + "/" + stem + ".bin";
}
std::string stem_of(const Message& m) { return std::string(msg_type_name(type_of(m))); }

// Every sample of a version with its file stem.
std::vector<std::pair<std::string, Message>> samples(const std::string& version) {
  std::vector<std::pair<std::string, Message>> out;
  for (const auto& m : test::golden_messages()) {
    const bool since_1_2 = type_of(m) == MsgType::turn_notice;  // types that 1.2 added
    if (since_1_2 && (version == "1.0" || version == "1.1")) continue;
    out.emplace_back(stem_of(m), m);
  }
  if (version != "1.0") {
    for (auto& s : test::golden_messages_1_1()) out.push_back(s);
  }
  if (version != "1.0" && version != "1.1") {
    for (auto& s : test::golden_messages_1_2()) out.push_back(s);
  }
  return out;
}

size_t bin_files(const std::string& dir) {
  size_t n = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) n += e.path().extension() == ".bin";
  return n;
}

}  // namespace

TEST_CASE("write golden files", "[.golden-write]") {
  fs::make_dirs(test::golden_dir(kCurrent));
  for (const auto& [stem, m] : samples(kCurrent)) write_frame_file(golden_path(kCurrent, stem), encode(m));
}

TEST_CASE("golden files of every version decode to the expected values", "[unit][proto]") {
  for (const std::string version : {"1.0", "1.1", "1.2"}) {
    const auto expected = samples(version);
    for (const auto& [stem, m] : expected) {
      const std::string path = golden_path(version, stem);
      INFO(path);
      REQUIRE(fs::exists(path));
      Message back = decode(read_frame_file(path));
      CHECK(type_of(back) == type_of(m));
      CHECK(test::message_diff(m, back) == "");
    }
    CHECK(bin_files(test::golden_dir(version)) == expected.size());
  }
}

TEST_CASE("the encoder reproduces the current version's golden files byte for byte", "[unit][proto]") {
  for (const auto& [stem, m] : samples(kCurrent)) {
    INFO(golden_path(kCurrent, stem));
    CHECK(frames_to_bytes(encode(m)) == fs::read_file(golden_path(kCurrent, stem)));
  }
}

TEST_CASE("frame files reject bad containers", "[unit][proto]") {
  auto bytes = frames_to_bytes({Blob::from_string("ab"), Blob::from_string("")});
  CHECK(frames_from_bytes(bytes).size() == 2);
  CHECK_THROWS_AS(frames_from_bytes(bytes.substr(0, bytes.size() - 1)), DataError);
  CHECK_THROWS_AS(frames_from_bytes(bytes + "x"), DataError);
  CHECK_THROWS_AS(frames_from_bytes(std::string("\xff\xff\xff\xff", 4)), DataError);
  CHECK_THROWS_AS(frames_from_bytes(""), DataError);
}
