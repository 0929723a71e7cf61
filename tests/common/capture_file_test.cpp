// The audit capture file (lib/common/capture_file.h): records round-trip, a record cut short by a
// killed writer is skipped, the size limit stops capture, damage is named.
#include <catch2/catch.hpp>

#include <fstream>

#include "common/capture_file.h"
#include "common/error.h"
#include "common/fs.h"
#include "test_util.h"

using namespace pcmoe;

namespace {

CaptureRecord record(uint64_t rid, int rows) {
  CaptureRecord r;
  r.side = "received";
  r.self = "b";
  r.self_index = 1;
  r.peer = "a";
  r.step = 40 + static_cast<int64_t>(rid);
  r.layer = 2;
  r.rid = rid;
  RawTensor t;
  t.name = "rows";
  t.dtype = DType::f32;
  t.shape = {rows, 2};
  std::vector<float> v(static_cast<size_t>(rows) * 2, 0.25f * static_cast<float>(rid));
  t.bytes.assign(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
  r.tensors.push_back(t);
  return r;
}

}  // namespace

TEST_CASE("capture file: records round-trip in order", "[unit][audit]") {
  test::TempDir dir;
  const std::string path = dir.path() + "/audit/received.cap";
  {
    CaptureWriter w(path, 1 << 20);
    for (uint64_t i = 1; i <= 3; ++i) REQUIRE(w.append(record(i, 5)));
    CHECK(w.records() == 3);
  }
  const auto got = read_capture(path);
  REQUIRE(got.size() == 3);
  CHECK(got[2].rid == 3);
  CHECK(got[2].step == 43);
  CHECK(got[2].layer == 2);
  CHECK(got[2].peer == "a");
  CHECK(got[2].self_index == 1);
  REQUIRE(got[2].find("rows") != nullptr);
  CHECK(got[2].find("rows")->shape == std::vector<int64_t>{5, 2});
  CHECK(got[2].find("rows")->bytes == record(3, 5).tensors[0].bytes);
}

TEST_CASE("capture file: a cut last record is skipped, the size limit stops capture, damage is named",
          "[unit][audit]") {
  test::TempDir dir;
  const std::string path = dir.path() + "/c.cap";
  uint64_t one = 0;  // the file's size with one record
  {
    CaptureWriter w(path, 1 << 20);
    w.append(record(1, 4));
    one = w.bytes();
    w.append(record(2, 4));
  }
  std::string bytes = fs::read_file(path);
  fs::atomic_write(path, bytes.substr(0, bytes.size() - 7));  // killed mid-write
  CHECK(read_capture(path).size() == 1);

  {
    CaptureWriter small(path, 2 * one - 10);  // room for one record of 4 rows, not two
    CHECK(small.append(record(1, 4)));
    CHECK_FALSE(small.append(record(2, 4)));
    CHECK_FALSE(small.append(record(3, 1)));  // stays stopped
  }
  CHECK(read_capture(path).size() == 1);

  fs::atomic_write(path, "PCMOECAP1" + std::string(8, '\xff'));
  CHECK_THROWS_WITH(read_capture(path), Catch::Contains("impossible length"));
  fs::atomic_write(path, "something else");
  CHECK_THROWS_WITH(read_capture(path), Catch::Contains("not a pcmoe capture file"));
}
