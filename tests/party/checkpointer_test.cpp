// A failed checkpoint write (disk full, a file-size limit) never ends the party: the error comes
// back as a value, a retry is scheduled with back-off, and the previous checkpoint file is kept.
#include <catch2/catch.hpp>

#include <sys/resource.h>

#include <csignal>

#include "common/error.h"
#include "common/fs.h"
#include "party/checkpointer.h"
#include "test_util.h"

using namespace pcmoe;
using party::Checkpointer;
using std::chrono::milliseconds;

TEST_CASE("checkpointer: failures are values, retried with back-off, then recovered", "[unit][party]") {
  bool fail = true;
  int writes = 0;
  Checkpointer c("/x/checkpoint.pcmoe", [&](const std::string&) {
    ++writes;
    if (fail) throw Error("write to '/x/checkpoint.pcmoe.tmp.1' failed: No space left on device");
  });
  const auto t0 = std::chrono::steady_clock::now();
  CHECK_THAT(c.write(t0), Catch::Contains("No space left"));
  CHECK(c.failures() == 1);
  CHECK_FALSE(c.retry_due(t0 + milliseconds(Checkpointer::kFirstRetryMs - 1)));
  CHECK(c.retry_due(t0 + milliseconds(Checkpointer::kFirstRetryMs)));
  const auto t1 = t0 + milliseconds(Checkpointer::kFirstRetryMs);
  CHECK_FALSE(c.write(t1).empty());
  CHECK_FALSE(c.retry_due(t1 + milliseconds(2 * Checkpointer::kFirstRetryMs - 1)));  // doubled
  CHECK(c.retry_due(t1 + milliseconds(2 * Checkpointer::kFirstRetryMs)));
  fail = false;
  CHECK(c.write(t1 + milliseconds(20000)).empty());
  CHECK(c.failures() == 0);
  CHECK_FALSE(c.retry_due(t1 + milliseconds(10000000)));
  CHECK(writes == 3);
}

TEST_CASE("checkpointer: a real write over a file-size limit keeps the previous file", "[unit][party]") {
  test::TempDir dir;
  const std::string path = dir.path() + "/checkpoint.pcmoe";
  fs::atomic_write(path, std::string(1000, 'a'));
  Checkpointer c(path, [&](const std::string& p) { fs::atomic_write(p, std::string(1 << 20, 'b')); });
  // RLIMIT_FSIZE: writes past 64 KiB fail with EFBIG (SIGXFSZ ignored), as on a full disk.
  struct rlimit old {};
  REQUIRE(::getrlimit(RLIMIT_FSIZE, &old) == 0);
  auto* previous_handler = std::signal(SIGXFSZ, SIG_IGN);
  struct rlimit small = old;
  small.rlim_cur = 64 << 10;
  REQUIRE(::setrlimit(RLIMIT_FSIZE, &small) == 0);
  const std::string error = c.write(std::chrono::steady_clock::now());
  ::setrlimit(RLIMIT_FSIZE, &old);
  std::signal(SIGXFSZ, previous_handler);
  CHECK_THAT(error, Catch::Contains("File too large"));
  CHECK(fs::read_file(path) == std::string(1000, 'a'));  // the previous checkpoint is intact
  CHECK_FALSE(fs::exists(path + ".tmp." + std::to_string(::getpid())));
  CHECK(c.write(std::chrono::steady_clock::now()).empty());
  CHECK(fs::read_file(path).size() == (1u << 20));
}
