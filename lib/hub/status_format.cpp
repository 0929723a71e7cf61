// Human and JSON rendering of Status and ControlAck (see status_format.h).
#include "hub/status_format.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "common/json.h"
#include "hub/json_matrix.h"
#include "hub/text.h"

namespace pcmoe::hub {
namespace {

std::string loss_text(double v) {
  if (std::isnan(v)) return "nan";
  if (v < 0) return "-";
  return fmt::format("{:.4f}", v);
}

std::string mib(uint64_t bytes) {
  return bytes == 0 ? "-" : fmt::format("{:.1f}", static_cast<double>(bytes) / (1024.0 * 1024.0));
}

std::string seen_text(double ms) {
  if (ms < 0) return "never";
  return ms < 10000 ? fmt::format("{:.1f} s", ms / 1e3) : fmt::format("{:.0f} s", ms / 1e3);
}

std::string percent_row(const std::vector<double>& shares) {
  std::string out;
  for (size_t i = 0; i < shares.size(); ++i) out += fmt::format("{}{:4.1f}", i ? " " : "", 100.0 * shares[i]);
  return out;
}

std::string table(const proto::Status& s) {
  size_t w = 5;
  for (const auto& p : s.parties) w = std::max(w, std::min<size_t>(p.party_id.size(), 24));
  std::string out = fmt::format(
      "{:<{}}  {:>3}  {:<5}  {:<10} {:>7} {:>11} {:>8} {:>8} {:>9} {:>9} {:>10} {:>10} {:>10}  {}\n", "PARTY",
      w, "IDX", "ALIVE", "STATE", "STEPS", "TOKENS", "LOSS", "EVAL", "TOK/S", "PEAK MiB", "BUDGET MiB",
      "SENT", "RECEIVED", "SEEN");
  for (const auto& p : s.parties) {
    out += fmt::format(
        "{:<{}}  {:>3}  {:<5}  {:<10} {:>7} {:>11} {:>8} {:>8} {:>9.0f} {:>9} {:>10} {:>10} {:>10}  {}\n",
        clip(p.party_id, 24), w, p.index, p.alive ? "yes" : "no", clip(p.state, 10), p.steps_done, p.tokens,
        loss_text(p.last_loss), loss_text(p.last_eval_loss),
        std::isfinite(p.tokens_per_s) ? p.tokens_per_s : 0.0, mib(p.peak_memory_bytes),
        mib(p.memory_budget_bytes), human_bytes(p.bytes_sent), human_bytes(p.bytes_received),
        seen_text(p.last_seen_ms_ago));
  }
  return out;
}

}  // namespace

std::string format_status(const proto::Status& s) {
  std::string out =
      fmt::format("run {} | state {} | step {}/{} | turn: {} | pool: {} | up {:.0f} s\n", s.run_id, s.state,
                  s.step, s.total_steps, s.turn_party.empty() ? "-" : s.turn_party,
                  s.pool_step < 0 ? std::string("none") : fmt::format("step {}", s.pool_step), s.uptime_s);
  out += table(s);
  if (!s.load_running.empty()) {
    out += "expert load, % of routed tokens per expert (running | window):\n";
    for (size_t i = 0; i < s.load_running.size(); ++i) {
      const uint32_t layer = i < s.moe_layers.size() ? s.moe_layers[i] : static_cast<uint32_t>(i);
      out += fmt::format("  layer {:>2}: {} | {}\n", layer, percent_row(s.load_running[i]),
                         i < s.load_window.size() ? percent_row(s.load_window[i]) : std::string());
    }
  }
  return out;
}

std::string status_json(const proto::Status& s) { return status_object(s).str(); }

JsonObject status_object(const proto::Status& s,
                         const std::function<void(size_t, JsonObject&)>& extend_party) {
  JsonObject j;
  j.add("run_id", s.run_id).add("state", s.state).add("step", s.step).add("total_steps", s.total_steps);
  j.add("turn_party", s.turn_party).add("uptime_s", s.uptime_s).add("pool_step", s.pool_step);
  std::vector<JsonObject> parties;
  for (const auto& p : s.parties) {
    JsonObject o;
    o.add("id", p.party_id).add("index", p.index).add("alive", p.alive).add("state", p.state);
    o.add("last_seen_ms_ago", p.last_seen_ms_ago).add("steps_done", p.steps_done).add("tokens", p.tokens);
    o.add("last_loss", p.last_loss)
        .add("last_eval_loss", p.last_eval_loss)
        .add("tokens_per_s", p.tokens_per_s);
    o.add("peak_memory_bytes", p.peak_memory_bytes).add("memory_budget_bytes", p.memory_budget_bytes);
    o.add("bytes_sent", p.bytes_sent).add("bytes_received", p.bytes_received).add("endpoint", p.endpoint);
    if (extend_party) extend_party(parties.size(), o);
    parties.push_back(std::move(o));
  }
  j.add("parties", parties);
  std::vector<int64_t> layers(s.moe_layers.begin(), s.moe_layers.end());
  j.add("moe_layers", layers);
  j.add_raw("placement", json_matrix(s.placement));
  j.add_raw("load_running", json_matrix(s.load_running));
  j.add_raw("load_window", json_matrix(s.load_window));
  return j;
}

std::string format_ack(const std::string& action, const proto::ControlAck& a) {
  return fmt::format("{}: {}{}\n", action, a.ok ? "" : "refused: ", a.message);
}

std::string ack_json(const std::string& action, const proto::ControlAck& a) {
  JsonObject j;
  j.add("action", action).add("ok", a.ok).add("message", a.message);
  return j.str();
}

}  // namespace pcmoe::hub
