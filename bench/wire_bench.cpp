// pcmoe-bench-wire: the remote expert call in isolation. One host (ExpertServer + ExpertHost on
// the device) and one requester (PeerLinks) in one process, over real ZeroMQ TCP on 127.0.0.1.
// Prints a table: rows per call, round-trip latency (median of reps) of an eval-mode forward and
// of a train-mode forward + backward + step_end, and bytes on the wire per train call against
// the minimum (rows x d_model x wire bytes, both directions, forward and backward).
// Then the transport alone: ZeroMQ over loopback TCP with the default context's I/O threads, 1 and
// 3 concurrent request/reply streams of 8 MiB messages (the size of one host's rows in a step of
// the small preset), sent and answered without copies: the ceiling any remote call can reach.
//   pcmoe-bench-wire [--device cuda|cpu] [--d-model 512] [--d-ff 1024] [--wire bf16|fp32] [--reps 50]
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <shared_mutex>
#include <string>
#include <thread>
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

// GB/s (both directions) of `streams` DEALER->ROUTER echo loops of `bytes`-byte messages.
static double transport_gbps(int streams, size_t bytes, int messages) {
  zmq::context_t& ctx = net::default_context();
  std::vector<char> payload(bytes, 1);
  std::vector<std::unique_ptr<zmq::socket_t>> servers, clients;
  for (int s = 0; s < streams; ++s) {
    servers.push_back(std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::router));
    servers.back()->bind("tcp://127.0.0.1:*");
    clients.push_back(std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::dealer));
    clients.back()->connect(servers.back()->get(zmq::sockopt::last_endpoint));
  }
  auto no_free = [](void*, void*) {};
  const auto t0 = Clock::now();
  std::vector<std::thread> threads;
  for (int s = 0; s < streams; ++s) {
    threads.emplace_back([&, s] {
      for (int i = 0; i < messages; ++i) {
        zmq::message_t out(payload.data(), bytes, no_free, nullptr);
        clients[s]->send(out, zmq::send_flags::none);
        zmq::message_t id, in;
        (void)servers[s]->recv(id);
        (void)servers[s]->recv(in);
        servers[s]->send(id, zmq::send_flags::sndmore);
        zmq::message_t back(payload.data(), bytes, no_free, nullptr);
        servers[s]->send(back, zmq::send_flags::none);
        zmq::message_t reply;
        (void)clients[s]->recv(reply);
      }
    });
  }
  for (auto& t : threads) t.join();
  const double sec = std::chrono::duration<double>(Clock::now() - t0).count();
  return 2.0 * streams * messages * static_cast<double>(bytes) / sec / 1e9;
}

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
  std::printf("\n== transport alone (ZeroMQ, loopback TCP, %d I/O threads, 8 MiB messages, no copies)\n",
              net::io_threads());
  std::printf("%8s %12s\n", "streams", "GB/s");
  for (int streams : {1, 3}) std::printf("%8d %12.2f\n", streams, transport_gbps(streams, 8u << 20, 40));
  return 0;
}
