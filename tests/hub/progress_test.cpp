// The live progress line (lib/hub/progress.h): fitted to the width (80 columns never wrap),
// windowed tokens per second, an ETA that stays frozen through a pause, and parties marked
// LOST / rejoined / absent / done.
#include <catch2/catch.hpp>

#include "hub/progress.h"

using namespace pcmoe;
using namespace pcmoe::hub;

namespace {

proto::PartyStatus party(const std::string& id, uint64_t tokens, double loss, bool alive = true) {
  proto::PartyStatus p;
  p.party_id = id;
  p.alive = alive;
  p.state = alive ? "training" : "lost";
  p.tokens = tokens;
  p.last_loss = loss;
  p.last_seen_ms_ago = 100;
  return p;
}

// Three parties, `step` global steps of 1000 tokens each, spread evenly.
proto::Status status(int64_t step, const std::string& state = "training") {
  proto::Status s;
  s.state = state;
  s.step = step;
  s.total_steps = 600;
  s.uptime_s = 125;
  const uint64_t each = static_cast<uint64_t>(step) * 1000 / 3;
  s.parties = {party("a", each, 2.1234), party("b", each, 2.3456), party("c", each, 12.987)};
  return s;
}

}  // namespace

TEST_CASE("progress: windowed tok/s and ETA, frozen while paused", "[unit][hub][progress]") {
  ProgressMeter m(20);
  CHECK(m.line(80).empty());
  m.add(status(0, "waiting"), 0);
  m.add(status(30), 10);
  CHECK(m.tokens_per_s() == 0);  // one sample while training: no rate yet
  m.add(status(60), 20);         // 30 steps = 30,000 tokens in 10 s
  CHECK(m.tokens_per_s() == Approx(3000).epsilon(0.01));
  CHECK(m.eta_s() == Approx(540 / 3.0));
  m.add(status(180), 30);  // faster now: the window (20 s) follows
  CHECK(m.tokens_per_s() == Approx(7500).epsilon(0.01));
  m.add(status(300), 50);  // the window covers 30..50 s now: 120 steps in 20 s
  CHECK(m.tokens_per_s() == Approx(6000).epsilon(0.01));
  const double eta = m.eta_s();
  CHECK(eta == Approx(50));
  // Paused: no current rate, the ETA stays where it was and says so.
  m.add(status(301, "paused"), 60);
  m.add(status(301, "paused"), 500);
  CHECK(m.tokens_per_s() == 0);
  CHECK(m.eta_s() == Approx(eta));
  CHECK_THAT(m.line(200), Catch::Contains("0 tok/s | ETA 50s (paused) | paused"));
  // Resumed: the window starts again; the frozen ETA shows until it has a new rate.
  m.add(status(301), 510);
  CHECK(m.eta_s() == Approx(eta));
  m.add(status(331), 520);
  CHECK(m.eta_s() == Approx(269 / 3.0));
  m.add(status(600, "stopping"), 600);
  CHECK(m.eta_s() == -1);
  CHECK_THAT(m.line(80), !Catch::Contains("ETA") && Catch::Contains("stopping"));
}

TEST_CASE("progress: fits the width, dropping the least important parts first", "[unit][hub][progress]") {
  ProgressMeter m;
  m.add(status(100), 0);
  m.add(status(200), 10);
  const std::string wide = m.line(200);
  CHECK(wide == "step 200/600 | a 2.123  b 2.346  c 12.987 | 10000 tok/s | ETA 40s | training | up 2m05s");
  CHECK(m.line(10).size() <= 9);
  for (size_t width : {120, 100, 80, 60, 40, 20}) {
    const std::string l = m.line(width);
    INFO(width << ": " << l);
    CHECK(l.size() <= width - 1);  // the last column stays free: never a wrap
    CHECK_THAT(l, Catch::StartsWith("step 200/600"));
  }
  CHECK(m.line(80).find("a 2.1") != std::string::npos);  // 80 columns keep the losses
  CHECK(m.line(80).find("ETA 40s") != std::string::npos);
}

TEST_CASE("progress: lost, rejoined, absent and done parties are marked", "[unit][hub][progress]") {
  ProgressMeter m;
  proto::Status s = status(10);
  s.parties[2].alive = false;
  s.parties[2].last_seen_ms_ago = -1;  // never joined
  m.add(s, 0);
  CHECK_THAT(m.line(200), Catch::Contains("c absent"));
  s.parties[2] = party("c", 0, 3.0);
  s.parties[1] = party("b", 100, 2.5, false);  // lost
  m.add(s, 1);
  CHECK_THAT(m.line(200), Catch::Contains("b LOST") && Catch::Contains("c 3.000"));
  s.parties[1].alive = true;  // back, no step yet
  m.add(s, 2);
  CHECK_THAT(m.line(200), Catch::Contains("b rejoined"));
  s.parties[1].steps_done += 1;  // trained again
  m.add(s, 3);
  CHECK_THAT(m.line(200), Catch::Contains("b 2.500"));
  s.parties[0].state = "bye";
  m.add(s, 4);
  CHECK_THAT(m.line(200), Catch::Contains("a done"));
  // Markers survive the narrowest form that still names parties.
  CHECK_THAT(m.line(50), Catch::Contains("a done"));
  m.no_answer(10);
  m.no_answer(14);
  CHECK_THAT(m.line(200), Catch::Contains("no answer 4s"));
}

TEST_CASE("progress: durations", "[unit][hub][progress]") {
  CHECK(ProgressMeter::duration(42) == "42s");
  CHECK(ProgressMeter::duration(190) == "3m10s");
  CHECK(ProgressMeter::duration(3700) == "1h01m");
  CHECK(ProgressMeter::duration(-1) == "-");
}
