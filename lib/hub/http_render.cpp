// Status JSON and Prometheus metrics of a HubView (see http_render.h).
#include "hub/http_render.h"

#include <optional>

#include "common/json.h"
#include "hub/json_matrix.h"
#include "hub/prometheus.h"
#include "hub/status_format.h"

namespace pcmoe::hub {
namespace {

const char* kStates[] = {"waiting", "training", "paused", "stopping", "finished"};

void hub_metrics(const HubView& v, PromText& m) {
  const proto::Status& s = v.status;
  m.family("pcmoe_hub_step", "gauge", "Global step: steps trained by the federation so far.").sample(s.step);
  m.family("pcmoe_hub_total_steps", "gauge", "Global steps the run trains (train.steps).")
      .sample(s.total_steps);
  m.family("pcmoe_hub_state", "gauge", "1 for the hub's current state.");
  for (const char* st : kStates) m.sample(s.state == st ? 1 : 0, {{"state", st}});
  m.family("pcmoe_hub_uptime_seconds", "gauge", "Seconds since this hub process started.").sample(s.uptime_s);
  m.family("pcmoe_hub_pool_step", "gauge", "Step of the latest complete expert-pool snapshot (-1: none).")
      .sample(static_cast<double>(s.pool_step));
  double live = 0;
  for (const auto& p : s.parties) live += p.alive ? 1 : 0;
  m.family("pcmoe_hub_parties", "gauge", "Configured parties.").sample(static_cast<double>(s.parties.size()));
  m.family("pcmoe_hub_parties_live", "gauge", "Parties alive now.").sample(live);
  m.family("pcmoe_hub_messages_received_total", "counter", "Messages the hub received.").sample(v.msgs_in);
  m.family("pcmoe_hub_messages_sent_total", "counter", "Messages the hub sent.").sample(v.msgs_out);
  m.family("pcmoe_hub_bad_messages_total", "counter", "Messages refused with an error reply.")
      .sample(v.bad_messages);
  m.family("pcmoe_hub_received_bytes_total", "counter", "Bytes received on the hub's socket.")
      .sample(v.bytes_in);
  m.family("pcmoe_hub_sent_bytes_total", "counter", "Bytes sent on the hub's socket.").sample(v.bytes_out);
  m.family("pcmoe_hub_send_failures_total", "counter", "Messages that could not be queued to a peer.")
      .sample(v.send_failures);
}

// One family over every party; `value(i)` returns nullopt to leave party i out (nothing known yet).
template <class F>
void per_party(const HubView& v, PromText& m, const std::string& name, const std::string& type,
               const std::string& help, F value) {
  m.family(name, type, help);
  for (size_t i = 0; i < v.status.parties.size(); ++i) {
    if (std::optional<double> x = value(i)) m.sample(*x, {{"party", v.status.parties[i].party_id}});
  }
}

// -1 (and any negative value) means "not known yet".
std::optional<double> known(double x) { return x < 0 ? std::nullopt : std::optional<double>(x); }
std::optional<double> count(uint64_t x) { return static_cast<double>(x); }

void party_metrics(const HubView& v, PromText& m) {
  const auto& ps = v.status.parties;
  static const PartyTiming kNone;
  auto timing = [&](size_t i) -> const PartyTiming& { return i < v.timing.size() ? v.timing[i] : kNone; };
  per_party(v, m, "pcmoe_party_alive", "gauge", "1 if the party is alive (its experts are available).",
            [&](size_t i) { return std::optional<double>(ps[i].alive ? 1 : 0); });
  per_party(v, m, "pcmoe_party_steps_total", "counter", "Steps the party trained (step reports).",
            [&](size_t i) { return std::optional<double>(static_cast<double>(ps[i].steps_done)); });
  per_party(v, m, "pcmoe_party_tokens_total", "counter", "Training tokens of its steps.",
            [&](size_t i) { return count(ps[i].tokens); });
  per_party(v, m, "pcmoe_party_loss", "gauge", "Training loss of its last step (nats/token).",
            [&](size_t i) { return known(ps[i].last_loss); });
  per_party(v, m, "pcmoe_party_eval_loss", "gauge", "Its last held-out loss (nats/token).",
            [&](size_t i) { return known(ps[i].last_eval_loss); });
  per_party(v, m, "pcmoe_party_tokens_per_second", "gauge", "Tokens per second of its last step.",
            [&](size_t i) { return known(ps[i].tokens_per_s); });
  per_party(v, m, "pcmoe_party_step_seconds", "gauge", "Its last step's duration.",
            [&](size_t i) { return known(timing(i).step_ms_last / 1e3); });
  per_party(v, m, "pcmoe_party_step_seconds_mean", "gauge", "Mean duration of its recent steps (up to 20).",
            [&](size_t i) { return known(timing(i).step_ms_mean / 1e3); });
  per_party(v, m, "pcmoe_party_peak_memory_bytes", "gauge", "Its peak memory (allocated) as reported.",
            [&](size_t i) { return count(ps[i].peak_memory_bytes); });
  per_party(v, m, "pcmoe_party_memory_budget_bytes", "gauge", "Its memory budget (0: none).",
            [&](size_t i) { return count(ps[i].memory_budget_bytes); });
  per_party(v, m, "pcmoe_party_sent_bytes_total", "counter",
            "Expert traffic its training steps sent (rows and gradients, as requester).",
            [&](size_t i) { return count(ps[i].bytes_sent); });
  per_party(v, m, "pcmoe_party_received_bytes_total", "counter",
            "Expert traffic its training steps received.",
            [&](size_t i) { return count(ps[i].bytes_received); });
  per_party(v, m, "pcmoe_party_last_seen_seconds", "gauge", "Seconds since the hub last heard from it.",
            [&](size_t i) { return known(ps[i].last_seen_ms_ago / 1e3); });
}

void load_metrics(const HubView& v, PromText& m) {
  const proto::Status& s = v.status;
  m.family(
      "pcmoe_expert_load_share", "gauge",
      "Share of routed tokens per expert and MoE layer, running (since the start) or over the hub's window.");
  for (const auto& [kind, load] :
       {std::pair{"running", &s.load_running}, std::pair{"window", &s.load_window}}) {
    for (size_t l = 0; l < load->size(); ++l) {
      const std::string layer = std::to_string(l < s.moe_layers.size() ? s.moe_layers[l] : l);
      for (size_t e = 0; e < (*load)[l].size(); ++e) {
        std::string host;
        if (l < s.placement.size() && e < s.placement[l].size() && s.placement[l][e] < s.parties.size())
          host = s.parties[s.placement[l][e]].party_id;
        m.sample((*load)[l][e],
                 {{"layer", layer}, {"expert", std::to_string(e)}, {"host", host}, {"kind", kind}});
      }
    }
  }
}

}  // namespace

std::string view_json(const HubView& v) {
  JsonObject j = status_object(v.status, [&](size_t i, JsonObject& o) {
    if (i >= v.timing.size()) return;
    o.add("step_ms_last", v.timing[i].step_ms_last).add("step_ms_mean", v.timing[i].step_ms_mean);
    o.add("joins", v.timing[i].joins);
    o.add_raw("recent_loss", json_matrix(v.timing[i].recent_loss));
    o.add_raw("recent_eval_loss", json_matrix(v.timing[i].recent_eval_loss));
  });
  j.add("model_hash", v.model_hash).add("published_at", v.published_at);
  JsonObject hub;
  hub.add("msgs_in", v.msgs_in).add("msgs_out", v.msgs_out).add("bad_messages", v.bad_messages);
  hub.add("bytes_in", v.bytes_in).add("bytes_out", v.bytes_out).add("send_failures", v.send_failures);
  j.add("hub", hub);
  return j.str();
}

std::string view_metrics(const HubView& v) {
  PromText m;
  hub_metrics(v, m);
  party_metrics(v, m);
  load_metrics(v, m);
  return m.str();
}

}  // namespace pcmoe::hub
