// Concurrent rounds (hub.schedule: concurrent; PROTOCOL.md 9.6) between real processes: pcmoe-hub
// and three pcmoe-party processes from configs/ on their corpora, over ZeroMQ on 127.0.0.1.
//  - The federation equals pcmoe-central mode protocol with the concurrent schedule (the same
//    configs, one process) round for round: every party's training loss of each of the first 20
//    rounds within 1e-4 relative (fp32; what remains is summation order: the hosts add the
//    parties' expert gradients in arrival order). Every round's expert update was applied.
//  - Faults mid-round: a party killed with kill -9 and a party frozen with SIGSTOP past
//    hub.round_deadline_ms. The round they were in is dropped by the round rule (no expert steps
//    on a partial round); every host's commit log agrees with the hub's, round by round, so no host
//    applied a round the hub dropped or stepped an expert twice; the others go on and finish.
#include <catch2/catch.hpp>

#include <signal.h>

#include <cmath>
#include <map>
#include <set>

#include "common/fs.h"
#include "federation.h"
#include "test_util.h"

using namespace pcmoe;

namespace {

// (global step, party) -> training loss, from metrics files ("step" is the global step + 1).
std::map<std::pair<int64_t, std::string>, double> round_losses(const std::vector<std::string>& files) {
  std::map<std::pair<int64_t, std::string>, double> out;
  for (const auto& f : files) {
    for (const auto& line : test::lines_with(f)) {
      auto step = test::json_number(line, "step");
      auto loss = test::json_number(line, "loss");
      auto party = test::json_string(line, "party");
      if (step && loss && party) out[{static_cast<int64_t>(*step), *party}] = *loss;
    }
  }
  return out;
}

// step -> applied, from the hub's hub.round_done lines.
std::map<int64_t, bool> hub_rounds(const std::string& log) {
  std::map<int64_t, bool> out;
  for (const auto& line : test::log_events(log, "hub.round_done")) {
    out[static_cast<int64_t>(test::json_number(line, "step").value_or(-1))] =
        line.find("\"applied\":true") != std::string::npos;
  }
  return out;
}

// step -> applied, from one party's host.round_commit lines (debug level).
std::map<int64_t, bool> host_rounds(const std::string& log) {
  std::map<int64_t, bool> out;
  for (const auto& line : test::log_events(log, "host.round_commit")) {
    out[static_cast<int64_t>(test::json_number(line, "step").value_or(-1))] =
        line.find("\"apply\":true") != std::string::npos;
  }
  return out;
}

}  // namespace

TEST_CASE("concurrent: hub + 3 parties in concurrent rounds equal mode protocol's concurrent schedule",
          "[integration][federation][concurrent]") {
  PCMOE_SKIP_WITHOUT_DEMO_CORPORA();
  constexpr int kRounds = 24;
  constexpr int kCompared = 20;
  test::TempDir dir;
  test::FederationOptions o;
  o.shared = test::tiny_overrides(kRounds, 8);
  o.shared.push_back("train.expert_lr_scale=2");  // the round update's rate, on hosts and in the twin
  o.hub = {"hub.schedule=concurrent"};
  test::Federation fed(dir.path(), o);
  FED_REQUIRE(fed, fed.start_hub());
  fed.start_parties();
  fed.require_clean_finish(kRounds);
  auto rounds = hub_rounds(fed.hub_log());
  FED_REQUIRE(fed, rounds.size() == kRounds);
  for (const auto& [step, applied] : rounds) {
    INFO("round " << step);
    CHECK(applied);
  }

  // The single-process twin, with the federation's settings and (to see that the rate reaches the
  // twin's round update at all) with the experts' rate of the schedule.
  const auto run_twin = [&](const std::string& name, const std::vector<std::string>& extra) {
    std::vector<std::string> argv = {test::app("pcmoe-central"), "--config",
                                     test::config("central-protocol.yaml"), "--set",
                                     "protocol.schedule=concurrent"};
    for (const auto& s : o.shared) argv.insert(argv.end(), {"--set", s});
    for (const auto& s : extra) argv.insert(argv.end(), {"--set", s});
    argv.insert(argv.end(),
                {"--set", "run.out_dir=" + dir.path() + "/" + name, "--set",
                 "run.log_file=" + dir.path() + "/" + name + ".log", "--set", "run.progress=off"});
    test::Process central(argv, dir.path() + "/" + name + ".out", dir.path() + "/" + name + ".err");
    auto code = central.wait(120000);
    INFO(test::tail(dir.path() + "/" + name + ".err") << test::tail(dir.path() + "/" + name + ".log"));
    REQUIRE(code == 0);
    return round_losses({dir.path() + "/" + name + "/metrics.jsonl"});
  };
  std::vector<std::string> files;
  for (const auto& id : fed.ids()) files.push_back(fed.metrics(id));
  auto fed_loss = round_losses(files);
  auto sim_loss = run_twin("central", {});
  auto sim_loss_rate1 = run_twin("central-rate1", {"train.expert_lr_scale=1"});
  double rate_effect = 0;
  for (const auto& id : fed.ids()) {
    rate_effect =
        std::max(rate_effect, std::abs(sim_loss[{kCompared, id}] - sim_loss_rate1[{kCompared, id}]));
  }
  INFO("largest loss difference at round " << kCompared
                                           << " between expert_lr_scale 2 and 1: " << rate_effect);
  CHECK(rate_effect > 1e-3);
  double worst = 0;
  for (int64_t step = 1; step <= kCompared; ++step) {
    for (const auto& id : fed.ids()) {
      INFO("round " << step << ", party " << id);
      REQUIRE(fed_loss.count({step, id}) == 1);
      REQUIRE(sim_loss.count({step, id}) == 1);
      const double f = fed_loss[{step, id}], s = sim_loss[{step, id}];
      INFO("federation " << f << ", protocol " << s);
      const double rel = std::abs(f - s) / std::abs(s);
      CHECK(rel < 1e-4);
      worst = std::max(worst, rel);
    }
  }
  // The parties learn: each one's last loss is well below its first.
  uint64_t on_trainer = 0;
  for (const auto& id : fed.ids()) {
    INFO("party " << id);
    CHECK(fed_loss[{kRounds, id}] < fed_loss[{1, id}] - 0.5);
    auto done = test::log_events(fed.party_log(id), "party.done");
    REQUIRE(done.size() == 1);
    on_trainer += static_cast<uint64_t>(test::json_number(done[0], "host_backward_on_trainer").value_or(0));
    CHECK(test::json_number(done[0], "host_backward_alone").has_value());
  }
  // Every party is in backward at once: hosted passes run inside a waiting backward (on CUDA the
  // only way they can run then: model/backward_gate.h).
  CHECK(on_trainer > 0);
  std::printf(
      "concurrent: %d rounds x 3 parties, first %d match mode protocol within relative %.2e; "
      "%llu hosted backward passes ran inside the host's own waiting backward\n",
      kRounds, kCompared, worst, static_cast<unsigned long long>(on_trainer));
}

TEST_CASE(
    "concurrent: kill -9 or SIGSTOP of a party mid-round drops that round's expert update, never half of it",
    "[integration][fault][concurrent]") {
  PCMOE_SKIP_WITHOUT_DEMO_CORPORA();
  constexpr int kRounds = 40;
  const bool kill = GENERATE(true, false);
  INFO((kill ? "kill -9" : "SIGSTOP, then SIGCONT"));
  test::TempDir dir;
  // A party silent 3 s is lost; a round's step must end within 2 s; heartbeats every 50 ms, so
  // the hub's status shows "training" while a round is open.
  test::FederationOptions o =
      test::fault_options(kRounds, 4, 50, {"hub.schedule=concurrent", "hub.round_deadline_ms=2000"});
  o.party.push_back("run.log_level=debug");  // host.round_commit
  test::Federation fed(dir.path(), o);
  FED_REQUIRE(fed, fed.start_hub());
  fed.start_parties();
  auto during = fed.wait_status(
      [](const proto::Status& s) {
        const auto* c = test::find_party(s, "c");
        return s.state == "training" && s.step >= 6 && s.pool_step >= 0 && c != nullptr &&
               c->state == "training";
      },
      60000);
  FED_REQUIRE(fed, during.has_value());
  fed.party("c").signal(kill ? SIGKILL : SIGSTOP);
  if (kill) REQUIRE(fed.party("c").wait(5000) == 128 + SIGKILL);
  FED_REQUIRE(
      fed,
      fed.wait_status([](const proto::Status& s) { return !test::alive_in(s, "c"); }, 20000).has_value());
  FED_REQUIRE(
      fed,
      fed.wait_status([&](const proto::Status& s) { return s.step >= during->step + 3; }, 30000).has_value());
  if (!kill) {
    // Paused while c comes back: a and b alone would otherwise finish the run's last rounds (about
    // 60 ms each) before c, frozen, notices that it was lost and says hello again.
    FED_REQUIRE(fed, fed.control("pause"));
    fed.party("c").signal(SIGCONT);
    FED_REQUIRE(
        fed,
        fed.wait_status([](const proto::Status& s) { return test::alive_in(s, "c"); }, 20000).has_value());
    FED_REQUIRE(fed, fed.control("resume"));
  }

  if (kill) {
    FED_REQUIRE(fed, fed.wait_all(90000));
    FED_CHECK(fed, fed.hub().exit_code() == 0);
    for (const char* id : {"a", "b"}) FED_CHECK(fed, fed.party(id).exit_code() == 0);
  } else {
    fed.require_clean_finish(kRounds);
  }
  auto rounds = hub_rounds(fed.hub_log());
  FED_REQUIRE(fed, rounds.size() == kRounds);  // every global step was one round, applied or dropped
  int dropped = 0;
  for (const auto& [step, applied] : rounds) dropped += applied ? 0 : 1;
  // The round c was lost in is dropped when c missed its deadline, or was lost in its training or
  // before its norm came in; lost later (its norm counted, the commit sent) or between rounds,
  // nothing needs dropping.
  int must_drop = 0;
  auto c_events = test::log_events(fed.hub_log(), "hub.round_party_lost");
  for (const auto& line : test::log_events(fed.hub_log(), "hub.round_straggler")) c_events.push_back(line);
  for (const auto& line : c_events) {
    if (line.find("\"party\":\"c\"") == std::string::npos) continue;
    // Past the deadline, or lost in training or before its norm: left out, so the round is dropped.
    const bool counted = line.find("\"stage\":\"commit\"") != std::string::npos;
    INFO(line);
    if (!counted) {
      ++must_drop;
      const auto step = static_cast<int64_t>(test::json_number(line, "step").value_or(-1));
      REQUIRE(rounds.count(step) == 1);
      CHECK_FALSE(rounds[step]);
    }
  }
  for (const auto& line : test::log_events(fed.hub_log(), "hub.round_done")) {
    INFO(line);
    if (test::json_number(line, "left_out").value_or(0) > 0)
      CHECK(line.find("\"applied\":false") != std::string::npos);
  }
  CHECK(dropped >= must_drop);
  CHECK(dropped <= kRounds / 4);   // and not the rest of the run
  CHECK(rounds.rbegin()->second);  // the last round is whole again
  // Every host applied exactly the rounds the hub applied and dropped exactly the ones it dropped.
  for (const auto& id : fed.ids()) {
    INFO("host " << id);
    auto host = host_rounds(fed.party_log(id));
    CHECK(test::log_events(fed.party_log(id), "host.round_commit").size() == host.size());  // once each
    for (const auto& [step, applied] : host) {
      INFO("round " << step);
      REQUIRE(rounds.count(step) == 1);
      CHECK(applied == rounds[step]);
    }
    if (id != "c") CHECK(host.size() >= static_cast<size_t>(kRounds - 2));
  }
  std::printf(
      "concurrent fault (%s): %d of %d rounds dropped (%d had to be: c left out or lost before its norm)\n",
      kill ? "kill -9" : "SIGSTOP", dropped, kRounds, must_drop);
}
