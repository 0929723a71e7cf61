// Several requests to one host that first answers `busy` (a party still building its trainer)
// over real sockets: every request is retried and answered, whatever order the answers come in.
// (Before replies were taken in arrival order, the `busy` of the second request arrived while the
// requester waited for the first's retry and was thrown away as stale: the requester then waited
// request_timeout_ms for an answer that never came.)
#include <catch2/catch.hpp>

#include <thread>

#include "model/backbone.h"
#include "net/context.h"
#include "party/expert_server.h"
#include "party/peer_links.h"
#include "party_test_util.h"

using namespace pcmoe;

TEST_CASE("requests to a host that answers busy at first are all retried and answered",
          "[integration][party]") {
  ModelConfig m;
  m.seq_len = 16;
  m.d_model = 16;
  m.n_layers = 1;
  m.n_heads = 2;
  m.d_ff = 12;
  m.n_experts = 4;
  m.top_k = 2;
  TrainConfig t;
  const uint32_t n = 2;
  test::HostParty host(m, t, party::Placement::round_robin(m, n, 1), 1, "b");
  proto::Limits limits;
  limits.d_model = m.d_model;
  net::ServerOptions so;
  so.endpoint = "tcp://127.0.0.1:*";
  party::ExpertServer server(net::default_context(), so, limits);
  server.start();  // not installed yet: every request gets `busy`
  party::PeerLinksOptions lo;
  lo.self = 0;
  lo.limits = limits;
  lo.request_timeout_ms = 5000;
  party::PeerLinks links(net::default_context(), lo);
  links.update({{"a", 0, "", "", true}, {"b", 1, server.endpoint(), "", true}});
  test::HostParty self(m, t, party::Placement::round_robin(m, n, 0), 0, "a");
  party::DispatchOptions dopt;
  dopt.self_id = "a";
  dopt.max_request_rows = 1;  // one request per expert: several to host b
  dopt.busy_retry_ms = 4000;
  party::FederatedDispatcher disp(m, *self.shard, party::Placement::round_robin(m, n, 0), links, dopt);
  std::thread later([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the host's start-up, simulated
    server.install(host.host.get());
  });
  model::Backbone bb(m, 3);
  disp.begin_step(0);
  auto tokens = torch::randint(0, 259, {2, 17}, torch::kLong);
  const auto t0 = std::chrono::steady_clock::now();
  torch::NoGradGuard no_grad;  // eval requests: no step to end
  CHECK_NOTHROW(bb->forward(tokens, disp));
  later.join();
  CHECK(disp.stats().busy_retries > 0);
  CHECK(disp.stats().requests > 1);
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(4000));
  server.stop();
}
