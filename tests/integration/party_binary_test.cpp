// pcmoe-party against a scripted hub (a ROUTER in this test, ephemeral port): what arrives right
// after the welcome — here a directory, as a hub sends when another party joins at the same
// moment — waits until the party has built its trainer (it crashed applying it before the
// trainer existed); the party then heartbeats, serves and exits 0 on SIGTERM with a bye.
#include <catch2/catch.hpp>

#include <signal.h>

#include "common/hash.h"
#include "common/model_config.h"
#include "federation.h"
#include "net/context.h"
#include "net/rpc.h"
#include "process.h"
#include "test_util.h"

using namespace pcmoe;

TEST_CASE("pcmoe-party: a directory right behind the welcome is applied once the trainer exists",
          "[integration][party]") {
  PCMOE_SKIP_WITHOUT_DEMO_CORPORA();
  test::TempDir dir;
  net::ServerOptions so;
  so.endpoint = "tcp://127.0.0.1:*";
  net::Server hub(net::default_context(), so);
  std::vector<std::string> argv = {test::app("pcmoe-party"), "--config", test::config("party-a.yaml")};
  for (const auto& s : test::tiny_overrides(20, 0)) argv.insert(argv.end(), {"--set", s});
  argv.insert(argv.end(), {"--set", "party.insecure=true", "--set", "party.hub=" + hub.endpoint(), "--set",
                           "party.heartbeat_ms=100", "--set", "run.out_dir=" + dir.path() + "/a", "--set",
                           "run.log_file=" + dir.path() + "/a.log"});
  test::Process party(argv, dir.path() + "/a.out", dir.path() + "/a.err");
  proto::Limits limits;
  // The hello.
  std::optional<net::Request> hello;
  REQUIRE(test::wait_until(
      [&] {
        hello = net::recv_request(hub, 50, limits);
        return hello && hello->message && std::holds_alternative<proto::Hello>(*hello->message);
      },
      30000));
  const auto& h = std::get<proto::Hello>(*hello->message);
  CHECK(h.party_id == "a");
  // The welcome for index 0 of 2 (the tiny preset: 4 MoE layers of 8 experts), and at once a
  // directory (the other party's endpoint is a port nobody listens on: no request goes there).
  proto::Welcome w;
  w.party_index = 0;
  w.run_id = "run";
  w.total_steps = 20;
  w.moe_layers = {0, 1, 2, 3};
  w.n_experts = 8;
  w.placement.assign(4, {0, 1, 0, 1, 0, 1, 0, 1});
  w.directory = {{"a", 0, h.expert_endpoint, "", true},
                 {"b", 1, "tcp://127.0.0.1:" + test::free_port(), "", true}};
  w.directory_epoch = 1;
  proto::Directory d;
  d.directory_epoch = 2;
  d.directory = w.directory;
  d.directory[1].alive = false;
  REQUIRE(net::reply(hub, hello->peer, w));
  REQUIRE(net::reply(hub, hello->peer, d));
  // It stays up and heartbeats as "serving" once it has built its trainer.
  bool serving = false;
  REQUIRE(test::wait_until(
      [&] {
        auto r = net::recv_request(hub, 50, limits);
        if (r && r->message) {
          if (auto* hb = std::get_if<proto::Heartbeat>(&*r->message))
            serving = serving || hb->state == "serving";
        }
        return serving || !party.running();
      },
      60000));
  INFO(test::tail(dir.path() + "/a.err") << test::tail(dir.path() + "/a.log"));
  REQUIRE(party.running());
  CHECK(serving);
  party.signal(SIGTERM);
  bool bye = false;
  test::wait_until(
      [&] {
        auto r = net::recv_request(hub, 50, limits);
        bye = bye || (r && r->message && std::holds_alternative<proto::Bye>(*r->message));
        return bye;
      },
      10000);
  CHECK(bye);
  CHECK(party.wait(10000) == 0);
}
