// pcmoe-bench-wire: the remote expert call in isolation. One host (ExpertServer + ExpertHost on
// the device) and one requester (PeerLinks) in one process, over real ZeroMQ TCP on 127.0.0.1.
// Prints a table: rows per call, round-trip latency (median of reps) of an eval-mode forward and
// of a train-mode forward + backward + step_end, and bytes on the wire per train call against
// the minimum (rows x d_model x wire bytes, both directions, forward and backward).
//   pcmoe-bench-wire [--device cuda|cpu] [--d-model 512] [--d-ff 1024] [--wire bf16|fp32] [--reps 50]
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <shared_mutex>
#include <string>
#include <vector>

#include "common/log.h"
#include "model/compat.h"
#include "model/expert.h"
#include "model/optim.h"
#include "net/context.h"
#include "party/expert_host.h"
#include "party/expert_server.h"
#include "party/peer_links.h"
#include "party/wire.h"

using namespace pcmoe;
using Clock = std::chrono::steady_clock;

static double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

int main(int argc, char** argv) {
  std::string device_name = torch::cuda::is_available() ? "cuda" : "cpu";
  int d_model = 512, d_ff = 1024, reps = 50;
  std::string wire_name = "bf16";
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--device")
      device_name = v;
    else if (k == "--d-model")
      d_model = std::stoi(v);
    else if (k == "--d-ff")
      d_ff = std::stoi(v);
    else if (k == "--wire")
      wire_name = v;
    else if (k == "--reps")
      reps = std::stoi(v);
    else {
      std::fprintf(
          stderr,
          "usage: pcmoe-bench-wire [--device D] [--d-model N] [--d-ff N] [--wire bf16|fp32] [--reps N]\n");
      return 2;
    }
  }
  log::init({"bench-wire", log::Level::warn, ""});
  const torch::Device device = model::parse_device(device_name);
  ModelConfig m;
  m.d_model = d_model;
  m.n_heads = 8;
  m.d_ff = d_ff;
  m.n_layers = 1;
  m.n_experts = 8;
  m.top_k = 2;
  TrainConfig t;
  t.dtype = device.is_cuda() ? "bf16" : "fp32";
  model::ExpertShard shard(m, 1, [](int, int) { return true; });
  shard.to(device);
  std::vector<model::NamedParam> params;
  for (auto& [n, p] : shard.named_expert_params()) params.push_back({n, p});
  model::AdamW opt(params, t);
  std::shared_mutex mu;
  party::HostOptions ho;
  ho.self_id = "host";
  ho.device = device;
  ho.bf16 = device.is_cuda();
  party::ExpertHost host(m, t, shard, opt, mu, ho);
  proto::Limits limits;
  limits.d_model = d_model;
  net::ServerOptions so;
  so.endpoint = "tcp://127.0.0.1:*";
  party::ExpertServer server(net::default_context(), so, limits);
  server.install(&host);
  server.start();
  party::PeerLinksOptions lo;
  lo.self = 0;
  lo.limits = limits;
  party::PeerLinks links(net::default_context(), lo);
  proto::PartyEntry e;
  e.party_id = "host";
  e.index = 1;
  e.endpoint = server.endpoint();
  links.update({e});
  const DType wire = party::resolve_wire_dtype(wire_name, device);
  std::printf("\n== remote expert call (%s, wire %s, d_model %d, d_ff %d, loopback TCP, median of %d)\n",
              device_name.c_str(), std::string(dtype_name(wire)).c_str(), d_model, d_ff, reps);
  std::printf("%8s %14s %22s %16s %16s %8s\n", "rows", "eval fwd ms", "train fwd+bwd+end ms", "bytes/call",
              "minimum", "ratio");
  uint64_t req_id = 1;
  int64_t step = 0;
  for (int rows : {1, 16, 256, 4096}) {
    auto x = torch::randn({rows, d_model}, torch::TensorOptions().device(device));
    auto ids = torch::randint(0, m.n_experts, {rows}, torch::kLong);
    std::vector<double> eval_ms, train_ms;
    uint64_t bytes = 0;
    for (int r = 0; r < reps + 3; ++r) {
      proto::ExpertForward f;
      f.request_id = req_id++;
      f.requester = "req";
      f.step = step;
      f.layer = 0;
      f.mode = proto::ExpertMode::eval;
      f.expert_ids = party::ids_to_wire(ids, m.n_experts);
      f.rows = party::to_wire(x, wire);
      auto t0 = Clock::now();
      links.send(1, f);
      auto rep = links.wait(1, proto::MsgType::expert_forward_reply, f.request_id);
      auto y = party::from_wire(std::get<proto::ExpertForwardReply>(rep).outputs, device, torch::kFloat32);
      if (device.is_cuda()) torch::cuda::synchronize();
      if (r >= 3) eval_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());

      const uint64_t b0 = links.bytes_sent() + links.bytes_received();
      t0 = Clock::now();
      f.request_id = req_id++;
      f.mode = proto::ExpertMode::train;
      f.rows = party::to_wire(x, wire);
      links.send(1, f);
      rep = links.wait(1, proto::MsgType::expert_forward_reply, f.request_id);
      y = party::from_wire(std::get<proto::ExpertForwardReply>(rep).outputs, device, torch::kFloat32);
      proto::ExpertBackward b;
      b.request_id = f.request_id;
      b.grad_outputs = party::to_wire(torch::ones_like(y), wire);
      links.send(1, b);
      rep = links.wait(1, proto::MsgType::expert_backward_reply, b.request_id);
      auto g =
          party::from_wire(std::get<proto::ExpertBackwardReply>(rep).grad_inputs, device, torch::kFloat32);
      proto::StepEnd se;
      se.requester = "req";
      se.step = step;
      links.send(1, se);
      links.wait(1, proto::MsgType::step_end_ack, static_cast<uint64_t>(step));
      ++step;
      if (device.is_cuda()) torch::cuda::synchronize();
      if (r >= 3) train_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
      bytes = links.bytes_sent() + links.bytes_received() - b0;
    }
    const double minimum = 4.0 * rows * d_model * static_cast<double>(dtype_size(wire));
    std::printf("%8d %14.3f %22.3f %16llu %16.0f %8.3f\n", rows, median(eval_ms), median(train_ms),
                static_cast<unsigned long long>(bytes), minimum, static_cast<double>(bytes) / minimum);
  }
  server.stop();
  return 0;
}
