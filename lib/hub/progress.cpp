// The live progress line (see progress.h).
#include "hub/progress.h"

#include <fmt/format.h>

#include <cmath>

namespace pcmoe::hub {

std::string ProgressMeter::duration(double s) {
  if (!(s >= 0)) return "-";
  const auto t = static_cast<int64_t>(std::llround(s));
  if (t < 60) return fmt::format("{}s", t);
  if (t < 3600) return fmt::format("{}m{:02d}s", t / 60, t % 60);
  return fmt::format("{}h{:02d}m", t / 3600, (t % 3600) / 60);
}

void ProgressMeter::add(const proto::Status& s, double t_s) {
  silent_since_s_ = -1;
  steps_at_rejoin_.resize(s.parties.size(), 0);
  for (size_t i = 0; i < s.parties.size(); ++i) {
    const auto& p = s.parties[i];
    if (!p.alive && p.last_seen_ms_ago >= 0) {
      seen_lost_.insert(p.party_id);
      rejoined_.erase(p.party_id);
    } else if (p.alive && seen_lost_.erase(p.party_id) > 0) {
      rejoined_.insert(p.party_id);
      steps_at_rejoin_[i] = p.steps_done;
    } else if (rejoined_.count(p.party_id) && p.steps_done > steps_at_rejoin_[i]) {
      rejoined_.erase(p.party_id);
    }
  }
  uint64_t tokens = 0;
  for (const auto& p : s.parties) tokens += p.tokens;
  // The window holds consecutive statuses taken while training; a pause, the end, or a stall in
  // the hub's answers longer than the window starts it again.
  const bool gap = !window_.empty() && t_s - window_.back().t_s > window_s_;
  if (s.state != "training" || gap) window_.clear();
  if (s.state == "training") {
    window_.push_back({t_s, tokens, s.step});
    while (window_.size() > 2 && t_s - window_[1].t_s >= window_s_) window_.pop_front();
  }
  last_ = s;
  has_status_ = true;
  last_t_s_ = t_s;
  // The last ETA computed while training stays (frozen) through a pause.
  if (window_.size() >= 2) {
    const double span = window_.back().t_s - window_.front().t_s;
    const int64_t steps = window_.back().step - window_.front().step;
    if (span >= 1 && steps > 0) frozen_eta_s_ = static_cast<double>(s.total_steps - s.step) * span / steps;
  }
}

void ProgressMeter::no_answer(double t_s) {
  if (silent_since_s_ < 0) silent_since_s_ = t_s;
  last_t_s_ = t_s;
}

double ProgressMeter::tokens_per_s() const {
  if (!has_status_ || last_.state != "training" || window_.size() < 2) return 0;
  const double span = window_.back().t_s - window_.front().t_s;
  if (span < 1) return 0;
  return static_cast<double>(window_.back().tokens - window_.front().tokens) / span;
}

double ProgressMeter::eta_s() const {
  if (!has_status_ || last_.state == "finished" || last_.state == "stopping") return -1;
  return frozen_eta_s_;
}

std::string ProgressMeter::party_text(const proto::PartyStatus& p, int decimals) const {
  std::string mark;
  if (!p.alive) {
    mark = p.last_seen_ms_ago < 0 ? "absent" : "LOST";
  } else if (rejoined_.count(p.party_id)) {
    mark = "rejoined";
  } else if (p.state == "bye" || p.state == "done") {
    mark = "done";
  }
  if (decimals < 0) return mark.empty() ? "" : p.party_id + " " + mark;  // markers only
  if (!mark.empty()) return p.party_id + " " + mark;
  if (p.last_loss < 0 || !std::isfinite(p.last_loss))
    return p.party_id + (std::isnan(p.last_loss) ? " nan" : " -");
  return fmt::format("{} {:.{}f}", p.party_id, p.last_loss, decimals);
}

std::string ProgressMeter::build(int decimals, bool with_tok, bool with_eta, bool with_up,
                                 bool with_parties) const {
  std::string out = fmt::format("step {}/{}", last_.step, last_.total_steps);
  if (with_parties) {
    std::string parties;
    for (const auto& p : last_.parties) {
      std::string t = party_text(p, decimals);
      if (t.empty()) continue;
      parties += (parties.empty() ? "" : "  ") + t;
    }
    if (!parties.empty()) out += " | " + parties;
  }
  if (with_tok) out += fmt::format(" | {:.0f} tok/s", tokens_per_s());
  if (with_eta) {
    const double eta = eta_s();
    if (eta >= 0 || last_.state == "training" || last_.state == "paused")
      out += " | ETA " + duration(eta) + (last_.state == "paused" && eta >= 0 ? " (paused)" : "");
  }
  out += " | " + (silent_since_s_ >= 0 ? "no answer " + duration(last_t_s_ - silent_since_s_) : last_.state);
  if (with_up) out += " | up " + duration(last_.uptime_s);
  return out;
}

std::string ProgressMeter::line(size_t width) const {
  if (!has_status_) {
    return silent_since_s_ >= 0
               ? "waiting for the hub to answer (" + duration(last_t_s_ - silent_since_s_) + ")"
               : "";
  }
  const size_t max = width > 1 ? width - 1 : 1;  // never the last column: no wrap on any terminal
  struct Variant {
    int decimals;
    bool tok, eta, up, parties;
  };
  static const Variant kVariants[] = {{3, true, true, true, true},     {3, true, true, false, true},
                                      {2, true, true, false, true},    {2, false, true, false, true},
                                      {-1, true, true, false, true},   {-1, false, true, false, true},
                                      {-1, false, false, false, true}, {-1, false, false, false, false}};
  std::string text;
  for (const auto& v : kVariants) {
    text = build(v.decimals, v.tok, v.eta, v.up, v.parties);
    if (text.size() <= max) return text;
  }
  return text.substr(0, max);
}

}  // namespace pcmoe::hub
