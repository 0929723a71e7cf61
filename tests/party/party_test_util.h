// Test helpers for lib/party: an in-process ExpertLink that hands requests straight to the
// hosts' ExpertHost objects, and a small federation of hosts built in one process.
#pragma once

#include <deque>
#include <map>
#include <memory>
#include <shared_mutex>

#include "common/error.h"
#include "common/party_config.h"
#include "model/expert.h"
#include "model/optim.h"
#include "party/dispatcher.h"
#include "party/expert_host.h"
#include "party/expert_link.h"
#include "test_util.h"

namespace pcmoe::test {

// Calls ExpertHost::handle synchronously on send(); wait() returns the queued reply.
class LoopbackLink : public party::ExpertLink {
 public:
  LoopbackLink(std::string self_id, std::map<uint32_t, party::ExpertHost*> hosts)
      : self_(std::move(self_id)), hosts_(std::move(hosts)) {}
  void send(uint32_t host, const proto::Message& msg) override {
    auto it = hosts_.find(host);
    if (it == hosts_.end()) throw TransportError("no such host " + std::to_string(host));
    auto reply = it->second->handle(self_, msg);
    if (!timelines) {  // a host that sends none (protocol 1.0)
      if (auto* f = std::get_if<proto::ExpertForwardReply>(&reply)) f->timeline.clear();
      if (auto* b = std::get_if<proto::ExpertBackwardReply>(&reply)) b->timeline.clear();
    }
    replies_[host].push_back(std::move(reply));
    sent_++;
  }
  bool timelines = true;  // false: replies lose their host timeline (`tl`)
  proto::Message wait(uint32_t host, proto::MsgType, uint64_t) override {
    auto& q = replies_[host];
    if (q.empty()) throw TransportError("no reply queued from host " + std::to_string(host));
    auto m = q.front();
    q.pop_front();
    return m;
  }
  // The queued replies match the order of the sends: the first pending one answered is the one
  // at the front of some host's queue (tried from the last pending host, to exercise the
  // requester's out-of-order handling).
  std::pair<size_t, proto::Message> wait_any(const std::vector<party::Expected>& pending) override {
    for (size_t k = pending.size(); k-- > 0;) {
      auto& q = replies_[pending[k].host];
      if (q.empty() || !party::reply_matches(q.front(), pending[k])) continue;
      auto m = q.front();
      q.pop_front();
      return {k, m};
    }
    throw TransportError("no queued reply answers any pending request");
  }
  uint64_t bytes_sent() const override { return sent_; }
  uint64_t bytes_received() const override { return 0; }

 private:
  std::string self_;
  std::map<uint32_t, party::ExpertHost*> hosts_;
  std::map<uint32_t, std::deque<proto::Message>> replies_;
  uint64_t sent_ = 0;
};

// The parameters of `all`'s experts that party `self` of `n` does not host (round-robin
// placement): what its hosts' reported gradient norms cover.
inline std::vector<torch::Tensor> remote_expert_params(const model::ExpertShard& all, uint32_t n,
                                                       uint32_t self) {
  std::vector<torch::Tensor> out;
  for (auto& [name, p] : all.named_expert_params()) {
    int l, e;
    std::string w;
    PCMOE_CHECK(model::parse_expert_param(name, l, e, w), "not an expert parameter: {}", name);
    if (static_cast<uint32_t>(e) % n != self) out.push_back(p);
  }
  return out;
}

// One party's expert side: its shard, the shard's optimizer, the lock, and the host.
struct HostParty {
  std::unique_ptr<model::ExpertShard> shard;
  std::unique_ptr<model::AdamW> opt;
  std::shared_mutex mu;
  std::unique_ptr<party::ExpertHost> host;

  HostParty(const ModelConfig& m, const TrainConfig& t, const party::Placement& placement, uint32_t index,
            const std::string& id) {
    shard = std::make_unique<model::ExpertShard>(
        m, t.expert_seed, [&](int l, int e) { return placement.host_of(l, e) == index; });
    std::vector<model::NamedParam> params;
    for (auto& [name, p] : shard->named_expert_params()) params.push_back({name, p});
    opt = std::make_unique<model::AdamW>(std::move(params), t);
    party::HostOptions ho;
    ho.self_id = id;
    host = std::make_unique<party::ExpertHost>(m, t, *shard, *opt, mu, ho);
  }
};

// A config for party "a" with model `m` that trains on a small fortune corpus written into `dir`
// (400 documents; batch 4, one held-out batch, 10% held out), output under dir/out.
inline PartyConfig party_config_with_corpus(const TempDir& dir, const ModelConfig& m) {
  std::string text;
  for (int i = 0; i < 400; ++i) text += "document " + std::to_string(i) + " with some words in it\n%\n";
  dir.write("corpus/f", text);
  PartyConfig cfg;
  cfg.model = m;
  cfg.train.batch_size = 4;
  cfg.train.eval_batches = 1;
  cfg.party.id = "a";
  DataSource src;
  src.path = dir.path() + "/corpus";
  src.format = "fortune";
  cfg.data.sources = {src};
  cfg.data.heldout_permille = 100;
  cfg.run.out_dir = dir.path() + "/out";
  return cfg;
}

}  // namespace pcmoe::test

namespace pcmoe::test {

// ||a - b|| / ||b|| in float64 on the CPU (any device, any dtype).
inline double rel_err(const torch::Tensor& a, const torch::Tensor& b) {
  auto bd = b.to(torch::kCPU, torch::kFloat64);
  const double d = (a.to(torch::kCPU, torch::kFloat64) - bd).norm().item<double>();
  return d / std::max(bd.norm().item<double>(), 1e-30);
}

// The expert parameter named `name` ("l1.e5.w1") of a shard, or an undefined tensor.
inline torch::Tensor find_param(model::ExpertShard& shard, const std::string& name) {
  for (auto& [n, p] : shard.named_expert_params()) {
    if (n == name) return p;
  }
  return {};
}

}  // namespace pcmoe::test
