// Requester-side connections to the expert hosts (see peer_links.h).
#include "party/peer_links.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>

#include "common/log.h"
#include "common/trace.h"
#include "model/backward_gate.h"
#include "party/trace_keys.h"
#include "proto/codec.h"

namespace pcmoe::party {
namespace {

using Clock = std::chrono::steady_clock;
constexpr int kSliceMs = 50;  // waits re-check liveness this often

}  // namespace

bool reply_matches(const proto::Message& m, const Expected& e) {
  const uint64_t id = e.request_id;
  switch (e.expect) {
    case proto::MsgType::expert_forward_reply:
      if (auto* r = std::get_if<proto::ExpertForwardReply>(&m)) return r->request_id == id;
      break;
    case proto::MsgType::expert_backward_reply:
      if (auto* r = std::get_if<proto::ExpertBackwardReply>(&m)) return r->request_id == id;
      break;
    case proto::MsgType::step_end_ack:
      if (auto* r = std::get_if<proto::StepEndAck>(&m)) return static_cast<uint64_t>(r->step) == id;
      break;
    case proto::MsgType::step_abort_ack:
      if (auto* r = std::get_if<proto::StepAbortAck>(&m)) return static_cast<uint64_t>(r->step) == id;
      break;
    default:
      break;
  }
  if (auto* err = std::get_if<proto::ErrorMsg>(&m)) {
    const auto t = static_cast<proto::MsgType>(err->in_reply_to);
    if (e.expect == proto::MsgType::step_end_ack) return t == proto::MsgType::step_end;
    if (e.expect == proto::MsgType::step_abort_ack) return t == proto::MsgType::step_abort;
    return err->request_id == id;
  }
  return false;
}

PeerLinks::PeerLinks(zmq::context_t& ctx, PeerLinksOptions options) : ctx_(ctx), opt_(std::move(options)) {
  // A host's backward pass handed to this requester's waiting node wakes its wait (backward_gate.h).
  waker_ = model::BackwardGate::instance().add_waker([this] { inbox_.wake(); });
}

PeerLinks::~PeerLinks() { model::BackwardGate::instance().remove_waker(waker_); }

void PeerLinks::update(const std::vector<proto::PartyEntry>& directory) {
  for (const auto& e : directory) {
    if (e.index == opt_.self) continue;
    Peer& p = peers_[e.index];
    p.id = e.party_id;
    p.alive = e.alive;
    if (e.endpoint.empty()) continue;
    if (!p.workers.empty() && p.endpoint == e.endpoint && p.key == e.curve_public_key) continue;
    for (const auto& w : p.workers) {
      closed_sent_ += w->bytes_sent();
      closed_received_ += w->bytes_received();
    }
    net::ClientOptions co;
    co.endpoint = e.endpoint;
    if (opt_.curve) {
      co.curve = opt_.curve;
      co.server_public_key = e.curve_public_key;
    }
    p.workers.clear();
    for (int k = 0; k < std::max(1, opt_.links_per_host); ++k) {
      p.workers.push_back(
          std::make_unique<PeerWorker>(ctx_, co, opt_.limits, inbox_, e.index, opt_.request_timeout_ms));
    }
    p.endpoint = e.endpoint;
    p.key = e.curve_public_key;
    PCMOE_INFO("party.peer_connect")
        .kv("peer", p.id)
        .kv("index", static_cast<int64_t>(e.index))
        .kv("endpoint", e.endpoint);
  }
}

std::string PeerLinks::peer_id(uint32_t host) const {
  auto it = peers_.find(host);
  return it == peers_.end() ? std::to_string(host) : it->second.id;
}

PeerLinks::Peer& PeerLinks::peer(uint32_t host) {
  auto it = peers_.find(host);
  if (it == peers_.end() || it->second.workers.empty()) {
    throw HostError(host, fmt::format("no connection to party index {} (not in the directory)", host));
  }
  return it->second;
}

void PeerLinks::check_alive(uint32_t host, const Peer& p, const char* what) const {
  if (p.alive && !(lost_probe_ && lost_probe_(host))) return;
  throw HostError(host, fmt::format("host party '{}' {}", p.id, what));
}

void PeerLinks::send_on(uint32_t host, uint32_t lane, const proto::Message& msg) {
  Peer& p = peer(host);
  check_alive(host, p, "is marked lost");
  // The lane's worker sends it; a failure comes back as an inbox entry.
  p.workers[lane % p.workers.size()]->send(proto::encode(msg),
                                           trace::on() ? trace_key(msg) : std::pair<uint64_t, char>{0, 0});
}

bool PeerLinks::set_sink(const Expected& e, ReplySink sink) {
  inbox_.set_sink(e, std::move(sink));
  return true;
}

proto::Message PeerLinks::wait(uint32_t host, proto::MsgType expect, uint64_t request_id) {
  return wait_any({{host, expect, request_id}}).second;
}

std::pair<size_t, proto::Message> PeerLinks::wait_any(const std::vector<Expected>& pending) {
  // In slices, so that a host the hub declares lost ends the wait at once; the deadline is the
  // request timeout without any answer.
  const auto timeout = std::chrono::milliseconds(opt_.request_timeout_ms);
  const auto deadline = Clock::now() + timeout;
  while (true) {
    for (const auto& e : pending) check_alive(e.host, peer(e.host), "was lost while we waited for it");
    model::BackwardGate::instance().serve();  // waiting inside backward: this process's host's passes
    auto got = inbox_.take(pending, std::chrono::milliseconds(kSliceMs), timeout);
    if (got) {
      auto& [k, entry] = *got;
      if (!entry.message) {
        throw HostError(entry.host, fmt::format("host party '{}' {}", peer(entry.host).id, entry.error));
      }
      return {k, std::move(*entry.message)};
    }
    if (Clock::now() > deadline) {
      const Expected& e = pending.front();
      throw HostError(e.host,
                      fmt::format("host party '{}' did not answer {} {} within {} ms", peer(e.host).id,
                                  proto::msg_type_name(e.expect), e.request_id, opt_.request_timeout_ms));
    }
  }
}

uint64_t PeerLinks::bytes_sent() const {
  uint64_t n = closed_sent_;
  for (const auto& [i, p] : peers_) {
    for (const auto& w : p.workers) n += w->bytes_sent();
  }
  return n;
}

uint64_t PeerLinks::bytes_received() const {
  uint64_t n = closed_received_;
  for (const auto& [i, p] : peers_) {
    for (const auto& w : p.workers) n += w->bytes_received();
  }
  return n;
}

}  // namespace pcmoe::party
