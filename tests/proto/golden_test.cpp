// Golden encoded messages (proto/golden/*.bin): every file decodes, forever, to the values of
// golden_messages(), and today's encoder reproduces it byte for byte. If either fails, the wire
// format changed: that needs a version bump (PROTOCOL.md, "Versioning"), not new golden files.
// The files are written by the hidden test "[.golden-write]" (run it once per new message type:
//   ./pcmoe_tests_core "[.golden-write]").
#include <catch2/catch.hpp>
#include <filesystem>

#include "common/fs.h"
#include "proto/codec.h"
#include "proto/frame_file.h"
#include "proto_test_util.h"

using namespace pcmoe;
using namespace pcmoe::proto;

namespace {
std::string golden_path(const Message& m) {
  return test::golden_dir() + "/" + std::string(msg_type_name(type_of(m))) + ".bin";
}
}  // namespace

TEST_CASE("write golden files", "[.golden-write]") {
  fs::make_dirs(test::golden_dir());
  for (const auto& m : test::golden_messages()) write_frame_file(golden_path(m), encode(m));
}

TEST_CASE("golden files decode to the expected values", "[unit][proto]") {
  auto expected = test::golden_messages();
  for (const auto& m : expected) {
    std::string path = golden_path(m);
    INFO(path);
    REQUIRE(fs::exists(path));
    Message back = decode(read_frame_file(path));
    CHECK(type_of(back) == type_of(m));
    CHECK(test::message_diff(m, back) == "");
  }
  size_t n_files = 0;
  for (const auto& e : std::filesystem::directory_iterator(test::golden_dir()))
    n_files += e.path().extension() == ".bin";
  CHECK(n_files == expected.size());
}

TEST_CASE("the encoder reproduces the golden files byte for byte", "[unit][proto]") {
  for (const auto& m : test::golden_messages()) {
    INFO(golden_path(m));
    CHECK(frames_to_bytes(encode(m)) == fs::read_file(golden_path(m)));
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
