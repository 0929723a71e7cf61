// Helpers for the PartySession tests: the actions of one kind, and the messages sent to the hub.
#pragma once

#include <variant>
#include <vector>

#include "party/party_session.h"

namespace pcmoe::test {

// Options of a test session (hub at tcp://127.0.0.1:5555, heartbeats every 100 ms) for a model
// with these MoE layers and experts; the hub timeout as given.
inline party::SessionOptions session_options(std::vector<uint32_t> moe_layers, uint32_t n_experts,
                                             int hub_timeout_ms) {
  party::SessionOptions o;
  o.hub_endpoint = "tcp://127.0.0.1:5555";
  o.id_origin = "party.yaml:3";
  o.moe_layers = std::move(moe_layers);
  o.n_experts = n_experts;
  o.hub_timeout_ms = hub_timeout_ms;
  o.heartbeat_ms = 100;
  return o;
}

// Party b's hello.
inline proto::Hello session_hello() {
  proto::Hello h;
  h.party_id = "b";
  h.model_hash = "hash";
  h.expert_endpoint = "tcp://127.0.0.1:7001";
  return h;
}

// The actions of type T, in order.
template <class T>
std::vector<T> all_of(const std::vector<party::Action>& actions) {
  std::vector<T> out;
  for (const auto& a : actions) {
    if (auto* x = std::get_if<T>(&a)) out.push_back(*x);
  }
  return out;
}

// The messages sent to the hub, of type M.
template <class M>
std::vector<M> sent(const std::vector<party::Action>& actions) {
  std::vector<M> out;
  for (const auto& s : all_of<party::act::Send>(actions)) {
    if (auto* m = std::get_if<M>(&s.message)) out.push_back(*m);
  }
  return out;
}

}  // namespace pcmoe::test
