// pcmoe-bench-wire: the remote expert call in isolation. One host (ExpertServer + ExpertHost on
// the device) and one requester (PeerLinks) in one process, over real ZeroMQ TCP on 127.0.0.1.
// Prints a table: rows per call, round-trip latency (median of reps) of an eval-mode forward and
// of a train-mode forward + backward + step_end, and bytes on the wire per train call against
// the minimum (rows x d_model x wire bytes, both directions, forward and backward).
// One table per wire dtype (--wire takes a comma list, e.g. bf16,fp8); fp8's minimum counts its
// scales (4 bytes per row). Then the transport alone: ZeroMQ over loopback TCP and over ipc://
// with the default context's I/O threads, 1, 3 and 6 concurrent request/reply streams of 8 MiB
// messages (the size of one host's rows in a step of the small preset), sent and answered without
// copies: the ceiling any remote call can reach; the last line, "transport_gbps <best>", is what
// bench/speed.sh reads.
//   pcmoe-bench-wire [--device cuda|cpu] [--d-model 512] [--d-ff 1024] [--wire bf16,fp8] [--reps 50]
//                    [--transport-only]
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
static double transport_gbps(const char* bind, int streams, size_t bytes, int messages) {
  zmq::context_t& ctx = net::default_context();
  std::vector<char> payload(bytes, 1);
  std::vector<std::unique_ptr<zmq::socket_t>> servers, clients;
  for (int s = 0; s < streams; ++s) {
    servers.push_back(std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::router));
    servers.back()->bind(bind);
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

namespace {

// Bytes of one row on the wire: the values, and fp8's scale.
double row_bytes(DType wire, int d_model) {
  return d_model * static_cast<double>(dtype_size(wire)) + (dtype_is_fp8(wire) ? 4.0 : 0.0);
}

// The latency table of one wire dtype against a host in this process.
void call_table(party::PeerLinks& links, const ModelConfig& m, const torch::Device& device, DType wire,
                int reps, uint64_t& req_id, int64_t& step) {
  std::printf("\n== remote expert call (%s, wire %s, d_model %d, d_ff %d, loopback TCP, median of %d)\n",
              device.str().c_str(), std::string(dtype_name(wire)).c_str(), m.d_model, m.d_ff, reps);
  std::printf("%8s %14s %22s %16s %16s %8s\n", "rows", "eval fwd ms", "train fwd+bwd+end ms", "bytes/call",
              "minimum", "ratio");
  for (int rows : {1, 16, 256, 4096}) {
    auto x = torch::randn({rows, m.d_model}, torch::TensorOptions().device(device));
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
    const double minimum = 4.0 * rows * row_bytes(wire, m.d_model);
    std::printf("%8d %14.3f %22.3f %16llu %16.0f %8.3f\n", rows, median(eval_ms), median(train_ms),
                static_cast<unsigned long long>(bytes), minimum, static_cast<double>(bytes) / minimum);
  }
}

void transport_table() {
  std::printf("\n== transport alone (ZeroMQ, %d I/O threads, 8 MiB messages, no copies)\n",
              net::io_threads());
  std::printf("%8s %12s %12s\n", "streams", "tcp GB/s", "ipc GB/s");
  double best = 0;
  for (int streams : {1, 3, 6}) {
    const double tcp = transport_gbps("tcp://127.0.0.1:*", streams, 8u << 20, 40);
    const double ipc = transport_gbps("ipc://*", streams, 8u << 20, 40);
    std::printf("%8d %12.2f %12.2f\n", streams, tcp, ipc);
    best = std::max(best, tcp);
  }
  std::printf("transport_gbps %.3f\n", best);  // the best loopback TCP figure (bench/speed.sh reads it)
}

}  // namespace

int main(int argc, char** argv) {
  std::string device_name = torch::cuda::is_available() ? "cuda" : "cpu";
  int d_model = 512, d_ff = 1024, reps = 50;
  std::string wire_names = "auto";
  bool transport_only = false;
  for (int i = 1; i < argc; ++i) {
    std::string k = argv[i];
    if (k == "--transport-only") {
      transport_only = true;
      continue;
    }
    if (i + 1 >= argc) k = "?";
    std::string v = i + 1 < argc ? argv[++i] : "";
    if (k == "--device") {
      device_name = v;
    } else if (k == "--d-model") {
      d_model = std::stoi(v);
    } else if (k == "--d-ff") {
      d_ff = std::stoi(v);
    } else if (k == "--wire") {
      wire_names = v;
    } else if (k == "--reps") {
      reps = std::stoi(v);
    } else {
      std::fprintf(
          stderr,
          "usage: pcmoe-bench-wire [--device D] [--d-model N] [--d-ff N] [--wire bf16,fp8,...] [--reps N] "
          "[--transport-only]\n");
      return 2;
    }
  }
  log::init({"bench-wire", log::Level::warn, ""});
  if (transport_only) {
    transport_table();
    return 0;
  }
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
  uint64_t req_id = 1;
  int64_t step = 0;
  size_t at = 0;
  while (at <= wire_names.size()) {
    const size_t comma = std::min(wire_names.find(',', at), wire_names.size());
    call_table(links, m, device, party::resolve_wire_dtype(wire_names.substr(at, comma - at), device), reps,
               req_id, step);
    at = comma + 1;
  }
  server.stop();
  transport_table();
  return 0;
}
