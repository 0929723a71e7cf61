// Signals on a running federation (hub + 3 parties from configs/, each on its corpus; small
// timeouts). SIGTERM makes a party checkpoint, say bye and exit 0 within seconds, its last log
// line party.exit; restarted with the same config and out_dir it restores that checkpoint
// (party.resumed), rejoins the running hub (alive again in its status, rejoin in its log) and
// trains on from where it stopped until the run finishes. SIGTERM to the hub runs the operator
// end sequence: final snapshot, stop to the parties still there, which evaluate, checkpoint,
// export and exit 0, and the hub exits 0. Started again with the same configs after that, the
// hub continues the saved run (hub.resume) and the parties their checkpoints, to train.steps.
#include <catch2/catch.hpp>

#include <signal.h>

#include <chrono>
#include <cstdio>

#include "common/fs.h"
#include "federation.h"
#include "test_util.h"

using namespace pcmoe;
using test::ms_since;

namespace {

using Clock = std::chrono::steady_clock;

// SIGTERM to party `id`: it must exit 0 within 5 s, with a checkpoint written after the signal
// and party.exit (code 0) as its last log line. Returns the step of that checkpoint.
int64_t terminate_party(test::Federation& fed, const std::string& id) {
  INFO("party " << id);
  const size_t checkpoints_before = test::log_events(fed.party_log(id), "party.checkpoint").size();
  const auto t0 = Clock::now();
  fed.party(id).signal(SIGTERM);
  auto code = fed.party(id).wait(15000);
  const double exit_ms = ms_since(t0);
  FED_REQUIRE(fed, code.has_value());
  FED_CHECK(fed, *code == 0);
  CHECK(exit_ms < 5000);
  std::printf("signals: party %s exited %d %.0f ms after SIGTERM\n", id.c_str(), *code, exit_ms);
  const auto log = test::lines_with(fed.party_log(id));
  REQUIRE(!log.empty());
  CHECK(test::json_string(log.back(), "event") == "party.exit");
  CHECK(test::json_number(log.back(), "code") == 0);
  CHECK(test::log_events(fed.party_log(id), "party.signal").size() >= 1);
  auto checkpoints = test::log_events(fed.party_log(id), "party.checkpoint");
  REQUIRE(checkpoints.size() == checkpoints_before + 1);
  CHECK(fs::exists(fed.party_dir(id) + "/checkpoint.pcmoe"));
  return static_cast<int64_t>(test::json_number(checkpoints.back(), "step").value_or(-1));
}

}  // namespace

TEST_CASE(
    "signals: a SIGTERMed party checkpoints and exits 0; restarted, it resumes and rejoins the running hub",
    "[integration][signals]") {
  PCMOE_SKIP_WITHOUT_DEMO_CORPORA();
  constexpr int kSteps = 60;
  test::TempDir dir;
  test::Federation fed(dir.path(), test::fault_options(kSteps, 4, 500));
  FED_REQUIRE(fed, fed.start_hub());
  fed.start_parties();
  FED_REQUIRE(fed, fed.wait_status([](const proto::Status& s) { return s.step >= 6; }, 60000).has_value());

  const int64_t ckpt_step = terminate_party(fed, "b");
  CHECK(ckpt_step >= 1);
  const size_t rows_before = test::lines_with(fed.metrics("b")).size();
  REQUIRE(rows_before >= 1);
  const int64_t party_steps_before = static_cast<int64_t>(
      test::json_number(test::lines_with(fed.metrics("b")).back(), "party_steps").value_or(-1));

  // The hub takes it out (its bye), and the other two keep training without it.
  auto gone = fed.wait_status([](const proto::Status& s) { return !test::alive_in(s, "b"); }, 10000);
  FED_REQUIRE(fed, gone.has_value());
  FED_REQUIRE(
      fed,
      fed.wait_status([&](const proto::Status& s) { return s.step >= gone->step + 3; }, 20000).has_value());

  // Restarted with the same config and out_dir: it restores its checkpoint and rejoins.
  const auto restart = Clock::now();
  fed.start_party("b");
  FED_REQUIRE(fed,
              test::wait_until([&] { return !test::log_events(fed.party_log("b"), "party.resumed").empty(); },
                               30000));
  auto resumed = test::log_events(fed.party_log("b"), "party.resumed");
  REQUIRE(resumed.size() == 1);
  CHECK(test::json_number(resumed[0], "step") == ckpt_step);
  CHECK(test::json_number(resumed[0], "steps_done") == party_steps_before);
  auto back = fed.wait_status([](const proto::Status& s) { return test::alive_in(s, "b"); }, 30000);
  FED_REQUIRE(fed, back.has_value());
  const double rejoin_ms = ms_since(restart);
  auto joins = test::log_events(fed.hub_log(), "hub.party_joined");
  REQUIRE(!joins.empty());
  CHECK_THAT(joins.back(), Catch::Contains("\"party\":\"b\"") && Catch::Contains("\"rejoin\":true") &&
                               Catch::Contains("\"resume_step\":" + std::to_string(ckpt_step)));

  // The run finishes with b back in it: everyone exits 0.
  fed.require_clean_finish(kSteps);
  // b trained again after its restart, counting on from its checkpoint.
  auto rows = test::lines_with(fed.metrics("b"));
  REQUIRE(rows.size() > rows_before);
  CHECK(test::json_number(rows[rows_before], "party_steps") == party_steps_before + 1);
  CHECK(test::json_number(rows[rows_before], "step").value_or(0) > ckpt_step);
  std::printf(
      "signals: b checkpointed at step %lld, rejoined %.0f ms after its restart, trained %zu more steps\n",
      static_cast<long long>(ckpt_step), rejoin_ms, rows.size() - rows_before);
}

TEST_CASE("signals: SIGTERM to two parties and then to the hub: every process exits 0 within seconds",
          "[integration][signals]") {
  PCMOE_SKIP_WITHOUT_DEMO_CORPORA();
  test::TempDir dir;
  test::Federation fed(dir.path(), test::fault_options(1000, 4, 500));  // far more steps than it will run
  FED_REQUIRE(fed, fed.start_hub());
  fed.start_parties();
  FED_REQUIRE(fed,
              fed.wait_status([](const proto::Status& s) { return s.step >= 6 && s.pool_step >= 0; }, 60000)
                  .has_value());
  terminate_party(fed, "a");
  terminate_party(fed, "c");
  auto alone = fed.wait_status(
      [](const proto::Status& s) { return !test::alive_in(s, "a") && !test::alive_in(s, "c"); }, 10000);
  FED_REQUIRE(fed, alone.has_value());
  FED_REQUIRE(fed, fed.wait_status([&](const proto::Status& s) { return s.step >= alone->step + 2; }, 20000)
                       .has_value());  // b trains on alone

  // The hub: final snapshot, stop to b, b's final evaluation, checkpoint and export, bye, release.
  const auto t0 = Clock::now();
  fed.hub().signal(SIGTERM);
  auto hub_code = fed.hub().wait(20000);
  const double hub_ms = ms_since(t0);
  FED_REQUIRE(fed, hub_code.has_value());
  FED_CHECK(fed, *hub_code == 0);
  auto b_code = fed.party("b").wait(10000);
  const double b_ms = ms_since(t0);
  FED_REQUIRE(fed, b_code.has_value());
  FED_CHECK(fed, *b_code == 0);
  CHECK(hub_ms < 10000);
  std::printf("signals: hub exited %.0f ms after SIGTERM, party b %.0f ms\n", hub_ms, b_ms);

  auto finished = test::log_events(fed.hub_log(), "hub.finished");
  REQUIRE(finished.size() == 1);
  CHECK(test::json_string(finished[0], "reason") == "operator");
  CHECK(fs::exists(fed.hub_dir() + "/pool.pcmoe"));
  CHECK(fs::exists(fed.hub_dir() + "/hub_state.json"));
  const auto log = test::lines_with(fed.party_log("b"));
  REQUIRE(!log.empty());
  CHECK(test::json_string(log.back(), "event") == "party.exit");
  CHECK(test::log_events(fed.party_log("b"), "party.done").size() == 1);
  CHECK(test::log_events(fed.party_log("b"), "party.exported").size() == 1);
  CHECK(fs::exists(fed.party_dir("b") + "/checkpoint.pcmoe"));
  CHECK(fs::exists(fed.party_dir("b") + "/model.pcmoe"));
}

TEST_CASE(
    "signals: SIGTERM to the hub stops the whole federation; started again with the same configs, hub "
    "and parties continue where they stopped and end at train.steps",
    "[integration][signals]") {
  PCMOE_SKIP_WITHOUT_DEMO_CORPORA();
  constexpr int kSteps = 60;
  test::TempDir dir;
  test::Federation fed(dir.path(), test::fault_options(kSteps, 4, 500));
  FED_REQUIRE(fed, fed.start_hub());
  fed.start_parties();
  FED_REQUIRE(fed, fed.wait_status([](const proto::Status& s) { return s.step >= 10; }, 60000).has_value());

  // Tonight: the operator stops everything (the same as pcmoe-ctl stop).
  fed.hub().signal(SIGTERM);
  FED_REQUIRE(fed, fed.wait_all(60000));
  FED_CHECK(fed, fed.hub().exit_code() == 0);
  for (const auto& id : fed.ids()) FED_CHECK(fed, fed.party(id).exit_code() == 0);
  const std::string state = fs::read_file(fed.hub_dir() + "/hub_state.json");
  const int64_t stopped_at = static_cast<int64_t>(test::json_number(state, "step").value_or(-1));
  REQUIRE(stopped_at >= 10);
  REQUIRE(stopped_at < kSteps);
  CHECK(test::json_string(state, "state") == "finished");

  // Tomorrow: the same commands again.
  FED_REQUIRE(fed, fed.restart_hub());
  fed.start_parties();
  FED_REQUIRE(fed, fed.wait_all(120000));
  FED_CHECK(fed, fed.hub().exit_code() == 0);
  auto resumed = test::log_events(fed.hub_log(), "hub.resumed");
  REQUIRE(resumed.size() == 1);
  CHECK(test::json_number(resumed[0], "step") == stopped_at);
  CHECK(test::json_string(resumed[0], "saved_state") == "finished");
  auto finished = test::log_events(fed.hub_log(), "hub.finished");
  REQUIRE(finished.size() == 2);
  CHECK(test::json_string(finished[0], "reason") == "operator");
  CHECK(test::json_string(finished[1], "reason") == "finished");
  CHECK(test::json_number(finished[1], "step") == kSteps);
  // Turn ids went on from the saved count (a fresh hub would have counted only the turns after
  // the restart); a failed turn, if any, adds one.
  CHECK(test::json_number(finished[1], "turns").value_or(0) >= kSteps);
  for (const auto& id : fed.ids()) {
    INFO("party " << id);
    FED_CHECK(fed, fed.party(id).exit_code() == 0);
    auto party_resumed = test::log_events(fed.party_log(id), "party.resumed");
    REQUIRE(party_resumed.size() == 1);
    CHECK(test::json_number(party_resumed[0], "step").value_or(-1) <= stopped_at);
    CHECK(test::log_events(fed.party_log(id), "party.exported").size() == 2);
  }
  std::printf("signals: federation stopped at step %lld, restarted, finished at step %d\n",
              static_cast<long long>(stopped_at), kSteps);
}
