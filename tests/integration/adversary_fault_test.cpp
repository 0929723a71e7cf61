// The fault-and-attack suite, part 2 (tag [adversary], ctest label integration): nobody loses their
// model. Real daemons (hub + 3 parties on their corpora, hub.party_timeout_ms 3000) and the shipped
// defaults for snapshots and checkpoints unless a case says otherwise:
//  - a party killed -9 and never restarted: the others train to the end and every survivor
//    exports a complete model (the lost host's experts from the last snapshot, said so);
//  - a party restarted without its checkpoint mid-run: it takes its hosted experts from the hub's
//    pool (the documented choice) and the run ends with every model exported;
//  - the hub killed -9 long after its last saved state: restarted, it fast-forwards to the parties'
//    steps, and no global step is trained twice;
//  - a full disk under one party: its checkpoints fail, it keeps training and ends normally.
// Each prints one "reliability:" line with the figures of README's reliability table.
#include <catch2/catch.hpp>

#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <map>

#include "common/fs.h"
#include "federation.h"
#include "test_util.h"

using namespace pcmoe;
using test::ms_since;
using Clock = std::chrono::steady_clock;

namespace {

// Global steps of every party's metrics: how often each was trained (metrics.jsonl's "step" is the
// global step + 1: the steps done once it was applied).
std::map<int64_t, int> trained_steps(const test::Federation& fed) {
  std::map<int64_t, int> count;
  for (const auto& id : fed.ids()) {
    for (const auto& row : test::lines_with(fed.metrics(id))) {
      if (auto s = test::json_number(row, "step")) ++count[static_cast<int64_t>(*s) - 1];
    }
  }
  return count;
}

int doubled(const std::map<int64_t, int>& count) {
  int n = 0;
  for (const auto& [step, times] : count) n += times > 1 ? times - 1 : 0;
  return n;
}

int exported_models(const test::Federation& fed) {
  int n = 0;
  for (const auto& id : fed.ids()) n += fs::exists(fed.party_dir(id) + "/model.pcmoe");
  return n;
}

}  // namespace

TEST_CASE("adversary: a party killed -9 for good; every survivor exports a complete model", "[adversary]") {
  PCMOE_SKIP_WITHOUT_DEMO_CORPORA();
  constexpr int kSteps = 60;
  test::TempDir dir;
  // The shipped snapshot period (100) is longer than this run: only the pool taken when training
  // started holds c's experts.
  test::Federation fed(dir.path(), test::fault_options(kSteps, 100, 200));
  FED_REQUIRE(fed, fed.start_hub());
  fed.start_parties();
  FED_REQUIRE(fed,
              fed.wait_status([](const proto::Status& s) { return s.step >= 10 && s.pool_step >= 0; }, 60000)
                  .has_value());
  fed.party("c").signal(SIGKILL);
  const auto killed = Clock::now();
  REQUIRE(fed.party("c").wait(5000) == 128 + SIGKILL);
  auto lost = fed.wait_status([](const proto::Status& s) { return !test::alive_in(s, "c"); }, 20000);
  FED_REQUIRE(fed, lost.has_value());
  const double detect_ms = ms_since(killed);
  const auto lost_at = Clock::now();
  FED_REQUIRE(fed, fed.wait_status([&](const proto::Status& s) { return s.step >= lost->step + 3; }, 20000));
  const double recover_ms = ms_since(lost_at);

  FED_REQUIRE(fed, fed.wait_all(120000));
  for (const char* id : {"a", "b"}) {
    INFO("party " << id);
    FED_CHECK(fed, fed.party(id).exit_code() == 0);
    CHECK(fs::exists(fed.party_dir(id) + "/model.pcmoe"));
    auto exported = test::log_events(fed.party_log(id), "party.exported");
    REQUIRE(exported.size() == 1);
    CHECK_THAT(exported[0], Catch::Contains("\"older_experts\":[\"c\"]") && Catch::Contains("\"c\":0"));
  }
  CHECK(fed.hub().exit_code() == 0);
  std::printf(
      "reliability: party kill -9 (no restart): lost after %.0f ms, training on %.0f ms later, "
      "%d steps doubled, %d/2 survivors exported (c's experts from the pool of step 0)\n",
      detect_ms, recover_ms, doubled(trained_steps(fed)), exported_models(fed));
}

TEST_CASE("adversary: a party restarted without its checkpoint takes its experts from the pool",
          "[adversary]") {
  PCMOE_SKIP_WITHOUT_DEMO_CORPORA();
  constexpr int kSteps = 60;
  test::TempDir dir;
  test::Federation fed(dir.path(), test::fault_options(kSteps, 8, 200));
  FED_REQUIRE(fed, fed.start_hub());
  fed.start_parties();
  FED_REQUIRE(fed,
              fed.wait_status([](const proto::Status& s) { return s.step >= 12 && s.pool_step >= 8; }, 60000)
                  .has_value());
  fed.party("c").signal(SIGKILL);
  REQUIRE(fed.party("c").wait(5000) == 128 + SIGKILL);
  FED_REQUIRE(fed, fed.wait_status([](const proto::Status& s) { return !test::alive_in(s, "c"); }, 20000));
  std::filesystem::remove_all(fed.party_dir("c"));  // its checkpoint is gone
  const auto restarted = Clock::now();
  fed.start_party("c");
  FED_REQUIRE(fed, fed.wait_status([](const proto::Status& s) { return test::alive_in(s, "c"); }, 30000));
  const double back_ms = ms_since(restarted);

  fed.require_clean_finish(kSteps);
  auto fresh = test::log_events(fed.party_log("c"), "party.fresh_midrun");
  REQUIRE(fresh.size() == 1);
  auto seeded = test::log_events(fed.party_log("c"), "party.experts_from_pool");
  REQUIRE(seeded.size() == 1);
  CHECK(test::json_number(seeded[0], "pool_step").value_or(-1) >= 8);
  CHECK(test::json_number(seeded[0], "tensors").value_or(0) > 0);
  CHECK(exported_models(fed) == 3);
  std::printf(
      "reliability: party restarted without checkpoint: back %.0f ms after the restart, hosted experts "
      "from the pool of step %.0f, %d steps doubled, 3/3 exported\n",
      back_ms, test::json_number(seeded[0], "pool_step").value_or(-1), doubled(trained_steps(fed)));
}

TEST_CASE("adversary: the hub killed -9 long after its saved state trains no global step twice",
          "[adversary]") {
  PCMOE_SKIP_WITHOUT_DEMO_CORPORA();
  constexpr int kSteps = 60;
  test::TempDir dir;
  // hub_state.json only when training starts (step 0): everything after it is the parties' news.
  test::Federation fed(dir.path(), test::fault_options(kSteps, 0, 200, {"hub.state_every=1000"}));
  FED_REQUIRE(fed, fed.start_hub());
  fed.start_parties();
  FED_REQUIRE(fed, fed.wait_status([](const proto::Status& s) { return s.step >= 15; }, 60000).has_value());
  fed.hub().signal(SIGKILL);
  REQUIRE(fed.hub().wait(5000) == 128 + SIGKILL);
  const auto killed = Clock::now();
  const int64_t saved = static_cast<int64_t>(
      test::json_number(fs::read_file(fed.hub_dir() + "/hub_state.json"), "step").value_or(-1));
  CHECK(saved == 0);
  FED_REQUIRE(fed, fed.restart_hub());
  auto back = fed.wait_status(
      [](const proto::Status& s) {
        return s.state == "training" && test::alive_in(s, "a") && test::alive_in(s, "b") &&
               test::alive_in(s, "c");
      },
      30000);
  FED_REQUIRE(fed, back.has_value());
  const double back_ms = ms_since(killed);

  fed.require_clean_finish(kSteps);
  auto ff = test::log_events(fed.hub_log(), "hub.fast_forward");
  REQUIRE(!ff.empty());
  CHECK(test::json_number(ff.back(), "to").value_or(0) >= 15);
  const auto count = trained_steps(fed);
  CHECK(doubled(count) == 0);
  int missing = 0;
  for (int64_t s = 0; s < kSteps; ++s) missing += count.count(s) == 0;
  CHECK(missing == 0);
  std::printf(
      "reliability: hub kill -9 (saved at step 0, killed at >= 15): all back %.0f ms after the kill, "
      "fast-forwarded to %.0f, %d steps doubled, %d lost, %d/3 exported\n",
      back_ms, test::json_number(ff.back(), "to").value_or(-1), doubled(count), missing,
      exported_models(fed));
}

TEST_CASE("adversary: a full disk under a party fails its checkpoints, not the party", "[adversary]") {
  PCMOE_SKIP_WITHOUT_DEMO_CORPORA();
  constexpr int kSteps = 45;
  test::TempDir dir;
  test::Federation fed(dir.path(), test::fault_options(kSteps, 0, 200));
  FED_REQUIRE(fed, fed.start_hub());
  fed.start_party("a");
  fed.start_party("b");
  // Party c's out_dir is a 4 MiB tmpfs in a mount namespace of its own (root: unshare -m; this
  // machine's mounts are never touched), else its files are limited to 4 MiB (prlimit --fsize):
  // either way its checkpoints (~18 MiB) fail, its metrics and seed file fit.
  fs::make_dirs(fed.party_dir("c"));
  const bool tmpfs =
      ::geteuid() == 0 && std::system("unshare -m --propagation private true 2>/dev/null") == 0;
  const std::vector<std::string> wrapper =
      tmpfs ? std::vector<std::string>{"/usr/bin/unshare",
                                       "-m",
                                       "--propagation",
                                       "private",
                                       "/bin/sh",
                                       "-c",
                                       "mount -t tmpfs -o size=4m pcmoe-test \"$0\" && exec \"$@\"",
                                       fed.party_dir("c")}
            : std::vector<std::string>{"/usr/bin/prlimit", "--fsize=4194304"};
  fed.start_party("c", {"run.checkpoint_every=2"}, wrapper);
  const std::string finished = fed.require_clean_finish(kSteps, 120000, /*all_exported=*/false);
  auto failed = test::log_events(fed.party_log("c"), "party.checkpoint_failed");
  REQUIRE(failed.size() >= 1);
  CHECK_THAT(failed[0], Catch::Contains(tmpfs ? "No space left on device" : "File too large"));
  CHECK(test::log_events(fed.hub_log(), "hub.party_lost").empty());
  // (Its out_dir is not visible from here with tmpfs: its log is outside, its party.done line says.)
  auto done = test::log_events(fed.party_log("c"), "party.done");
  REQUIRE(done.size() == 1);
  const int64_t c_steps = static_cast<int64_t>(test::json_number(done[0], "steps_done").value_or(0));
  CHECK(c_steps >= 6);  // it trained on after its first failed checkpoint (at its step 2)
  CHECK(fs::exists(fed.party_dir("a") + "/model.pcmoe"));
  CHECK(fs::exists(fed.party_dir("b") + "/model.pcmoe"));
  std::printf(
      "reliability: disk full (%s) under party c: %zu failed checkpoints, c trained %lld steps and "
      "exited 0\n",
      tmpfs ? "tmpfs" : "RLIMIT_FSIZE", failed.size(), static_cast<long long>(c_steps));
}
