// Membership bookkeeping of the hub (see registry.h).
#include "hub/registry.h"

namespace pcmoe::hub {

Registry::Registry(const std::vector<HubPartyEntry>& parties) {
  for (size_t i = 0; i < parties.size(); ++i) {
    PartyRecord r;
    r.id = parties[i].id;
    r.index = static_cast<uint32_t>(i);
    r.config_key = parties[i].public_key;
    parties_.push_back(std::move(r));
  }
}

PartyRecord* Registry::find_id(const std::string& id) {
  for (auto& p : parties_) {
    if (p.id == id) return &p;
  }
  return nullptr;
}

const PartyRecord* Registry::find_id(const std::string& id) const {
  for (const auto& p : parties_) {
    if (p.id == id) return &p;
  }
  return nullptr;
}

PartyRecord* Registry::find_alive_peer(const std::string& peer) {
  for (auto& p : parties_) {
    if (p.alive && p.peer == peer) return &p;
  }
  return nullptr;
}

const PartyRecord* Registry::find_lost_peer(const std::string& peer) const {
  for (const auto& p : parties_) {
    if (!p.alive && p.ever_joined && p.peer == peer) return &p;
  }
  return nullptr;
}

void Registry::join(PartyRecord& p, const std::string& peer, const std::string& curve_key,
                    const proto::Hello& hello, TimePoint now) {
  p.peer = peer;
  p.curve_key = curve_key;
  p.alive = true;
  p.ever_joined = true;
  ++p.joins;
  p.last_seen = now;
  p.endpoint = hello.expert_endpoint;
  p.hello_key = hello.curve_public_key;
  p.memory_budget_bytes = hello.memory_budget_bytes;
  p.resume_step = hello.resume_step;
  p.state = "joined";
  p.said_bye = false;
}

void Registry::move_connection(PartyRecord& p, const std::string& peer, const std::string& curve_key,
                               TimePoint now) {
  p.peer = peer;
  p.curve_key = curve_key;
  p.last_seen = now;
}

bool Registry::mark_lost(PartyRecord& p) {
  if (!p.alive) return false;
  p.alive = false;
  p.state = "lost";
  return true;
}

std::vector<uint32_t> Registry::live_indices() const {
  std::vector<uint32_t> out;
  for (const auto& p : parties_) {
    if (p.alive) out.push_back(p.index);
  }
  return out;
}

size_t Registry::live_count() const { return live_indices().size(); }

bool Registry::all_alive() const { return live_count() == parties_.size(); }

std::vector<uint32_t> Registry::silent(TimePoint now, Millis timeout) const {
  std::vector<uint32_t> out;
  for (const auto& p : parties_) {
    if (p.alive && now - p.last_seen > timeout) out.push_back(p.index);
  }
  return out;
}

std::vector<proto::PartyEntry> Registry::directory() const {
  std::vector<proto::PartyEntry> out;
  for (const auto& p : parties_) {
    proto::PartyEntry e;
    e.party_id = p.id;
    e.index = p.index;
    e.endpoint = p.endpoint;
    // The configured key is the authority; without CURVE at the hub, pass on what the party announced.
    e.curve_public_key = p.config_key.empty() ? p.hello_key : p.config_key;
    e.alive = p.alive;
    out.push_back(std::move(e));
  }
  return out;
}

std::vector<uint8_t> Registry::alive_mask() const {
  std::vector<uint8_t> out;
  for (const auto& p : parties_) out.push_back(p.alive ? 1 : 0);
  return out;
}

std::vector<proto::PartyStatus> Registry::statuses(TimePoint now) const {
  std::vector<proto::PartyStatus> out;
  for (const auto& p : parties_) {
    proto::PartyStatus s;
    s.party_id = p.id;
    s.index = p.index;
    s.alive = p.alive;
    s.state = p.state;
    s.last_seen_ms_ago = p.ever_joined ? ms_between(p.last_seen, now) : -1;
    s.steps_done = p.totals.steps_done;
    s.tokens = p.totals.tokens;
    s.last_loss = p.totals.last_loss;
    s.last_eval_loss = p.totals.last_eval_loss;
    s.tokens_per_s = p.totals.tokens_per_s;
    s.peak_memory_bytes = p.totals.peak_memory_bytes;
    s.memory_budget_bytes = p.memory_budget_bytes;
    s.bytes_sent = p.totals.bytes_sent;
    s.bytes_received = p.totals.bytes_received;
    s.endpoint = p.endpoint;
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace pcmoe::hub
