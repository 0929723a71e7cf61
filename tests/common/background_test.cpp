// run_with_ticks: long work on a helper thread, a periodic duty on the caller's (a party keeps
// heartbeating while it writes a checkpoint).
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>

#include "common/background.h"

using namespace pcmoe;
using namespace std::chrono_literals;

TEST_CASE("run_with_ticks: the caller ticks while the work runs elsewhere", "[unit][common]") {
  const auto caller = std::this_thread::get_id();
  std::thread::id worker;
  std::atomic<bool> working{false};
  int ticks = 0, ticks_while_working = 0;
  run_with_ticks(
      [&] {
        worker = std::this_thread::get_id();
        working = true;
        std::this_thread::sleep_for(300ms);
        working = false;
      },
      [&] {
        CHECK(std::this_thread::get_id() == caller);
        ++ticks;
        if (working) ++ticks_while_working;
      },
      20ms);
  CHECK(worker != caller);
  CHECK_FALSE(working);
  // 300 ms of work at a 20 ms period: about 15 ticks; a loaded machine may give fewer.
  CHECK(ticks_while_working >= 3);
  CHECK(ticks <= 20);
}

TEST_CASE("run_with_ticks: errors come back to the caller after the work has ended", "[unit][common]") {
  SECTION("the work's exception") {
    CHECK_THROWS_WITH(run_with_ticks([] { throw std::runtime_error("disk full"); }, [] {}, 5ms), "disk full");
  }
  SECTION("a tick's exception stops the ticking; the work still completes") {
    std::atomic<bool> finished{false};
    int ticks = 0;
    CHECK_THROWS_WITH(run_with_ticks(
                          [&] {
                            std::this_thread::sleep_for(100ms);
                            finished = true;
                          },
                          [&] {
                            ++ticks;
                            throw std::runtime_error("hub socket gone");
                          },
                          5ms),
                      "hub socket gone");
    CHECK(finished);
    CHECK(ticks == 1);
  }
  SECTION("instant work: no tick at all") {
    int ticks = 0;
    run_with_ticks([] {}, [&] { ++ticks; }, 1000ms);
    CHECK(ticks == 0);
  }
}
