// The hub's read-only HTTP service (hub.http) over real sockets on an ephemeral port, with scripted
// fake parties training: the status JSON (parties, step, per-party step times, placement, load),
// Prometheus metrics, the HTML page, /healthz, and refusals: no method but GET/HEAD, no other path.
// Also ctl.json in out_dir, which `pcmoe-ctl --run` reads. Built without cpp-httplib: skipped.
#include <catch2/catch.hpp>

#include "common/error.h"
#include "common/fs.h"
#include "hub/ctl.h"
#include "hub/http_render.h"
#include "hub_test_util.h"
#include "test_util.h"

#if PCMOE_WITH_HTTP
#include <httplib.h>
#endif

using namespace pcmoe;
using namespace pcmoe::hub;
using test::FakeParty;
using test::RunningHub;

TEST_CASE("metrics text: families, labels, units, unknown values left out", "[unit][hub][http]") {
  HubView v;
  v.status.state = "paused";
  v.status.step = 7;
  v.status.total_steps = 10;
  proto::PartyStatus a;
  a.party_id = "a\"x";  // escaped in labels
  a.alive = true;
  a.steps_done = 4;
  a.last_loss = 2.5;
  v.status.parties = {a};
  v.timing = {{250, 200, 1, {}, {}}};
  v.status.moe_layers = {1};
  v.status.placement = {{0, 0}};
  v.status.load_running = {{0.25, 0.75}};
  const std::string m = view_metrics(v);
  CHECK_THAT(m, Catch::Contains("# TYPE pcmoe_hub_step gauge\npcmoe_hub_step 7\n"));
  CHECK_THAT(m, Catch::Contains("pcmoe_hub_state{state=\"paused\"} 1\n"));
  CHECK_THAT(m, Catch::Contains("pcmoe_hub_state{state=\"training\"} 0\n"));
  CHECK_THAT(m, Catch::Contains("pcmoe_party_steps_total{party=\"a\\\"x\"} 4\n"));
  CHECK_THAT(m, Catch::Contains("pcmoe_party_step_seconds{party=\"a\\\"x\"} 0.25\n"));
  CHECK_THAT(m, Catch::Contains("pcmoe_party_step_seconds_mean{party=\"a\\\"x\"} 0.2\n"));
  CHECK_THAT(m, Catch::Contains("pcmoe_party_loss{party=\"a\\\"x\"} 2.5\n"));
  CHECK_THAT(m, !Catch::Contains("pcmoe_party_eval_loss{"));  // never evaluated: no sample
  CHECK_THAT(m,
             Catch::Contains(
                 "pcmoe_expert_load_share{layer=\"1\",expert=\"1\",host=\"a\\\"x\",kind=\"running\"} 0.75"));
}

#if PCMOE_WITH_HTTP

namespace {

struct Got {
  int status = 0;
  std::string body, type;
};

Got get(const std::string& url, const std::string& path, const std::string& method = "GET") {
  httplib::Client c(url.substr(0, url.size() - 1));  // without the trailing slash
  c.set_connection_timeout(5);
  c.set_read_timeout(5);
  httplib::Result r = method == "GET"    ? c.Get(path.c_str())
                      : method == "POST" ? c.Post(path.c_str(), "pause", "text/plain")
                                         : c.Delete(path.c_str());
  if (!r) return {};
  return {r->status, r->body, r->get_header_value("Content-Type")};
}

}  // namespace

TEST_CASE("hub.http: status page, status JSON and /metrics while parties train", "[integration][hub][http]") {
  test::TempDir dir;
  HubConfig cfg = test::small_hub_config({"a", "b"}, dir.path());
  cfg.train.steps = 1000000;
  cfg.hub.http = "127.0.0.1:0";
  RunningHub hub(cfg);
  const std::string url = hub.http_url();
  REQUIRE_THAT(url, Catch::StartsWith("http://127.0.0.1:") && Catch::EndsWith("/"));
  CHECK(get(url, "/healthz").status == 200);
  FakeParty a(hub.ctx(), hub.endpoint(), cfg, "a"), b(hub.ctx(), hub.endpoint(), cfg, "b");
  REQUIRE(a.join());
  REQUIRE(b.join());
  REQUIRE(test::pump_until({&a, &b}, [&] { return a.steps_taken.size() >= 3 && b.steps_taken.size() >= 3; }));
  // The view is published every HubServer::kPublishMs: wait for one that shows the steps.
  Got js;
  REQUIRE(test::pump_until(
      {&a, &b},
      [&] {
        js = get(url, "/status.json");
        return js.body.find("\"step_ms_mean\":100.0") != std::string::npos;
      },
      test::kWaitMs));
  CHECK(js.status == 200);
  CHECK(js.type == "application/json");
  CHECK_THAT(js.body, Catch::StartsWith("{\"run_id\":\"") && Catch::Contains("\"state\":\"training\"") &&
                          Catch::Contains("\"id\":\"a\",\"index\":0,\"alive\":true") &&
                          Catch::Contains("\"placement\":[[0,1,0,1],[0,1,0,1]]") &&
                          Catch::Contains("\"load_window\":[[") && Catch::Contains("\"joins\":1") &&
                          Catch::Contains("\"recent_loss\":[[1.0,3.0]") &&
                          Catch::Contains("\"hub\":{\"msgs_in\":"));
  Got m = get(url, "/metrics");
  CHECK(m.status == 200);
  CHECK_THAT(m.type, Catch::StartsWith("text/plain; version=0.0.4"));
  CHECK_THAT(m.body, Catch::Contains("pcmoe_hub_state{state=\"training\"} 1") &&
                         Catch::Contains("pcmoe_party_alive{party=\"b\"} 1") &&
                         Catch::Contains("pcmoe_party_step_seconds_mean{party=\"a\"} 0.1"));
  Got page = get(url, "/");
  CHECK(page.status == 200);
  CHECK_THAT(page.type, Catch::StartsWith("text/html"));
  CHECK_THAT(page.body, Catch::Contains("<title>pcmoe hub</title>") && Catch::Contains("status.json"));
  // Read-only: no method but GET, no path but these; the run is untouched.
  CHECK(get(url, "/status.json", "POST").status == 405);
  CHECK(get(url, "/", "DELETE").status == 405);
  CHECK(get(url, "/control/pause").status == 404);
  auto st = hub.status();
  CHECK(st.state == "training");
}

TEST_CASE("hub.http: a busy port fails the start, naming hub.http", "[integration][hub][http]") {
  test::TempDir dir;
  HubConfig cfg = test::small_hub_config({"a"}, dir.path());
  cfg.hub.http = "127.0.0.1:0";
  RunningHub first(cfg);
  const std::string port = first.http_url().substr(std::string("http://127.0.0.1:").size());
  cfg.hub.http = "127.0.0.1:" + port.substr(0, port.size() - 1);
  zmq::context_t ctx;
  CHECK_THROWS_AS(HubServer(cfg, ctx), TransportError);  // exit 3, not 2: the address is fine, the port busy
  CHECK_THROWS_WITH(HubServer(cfg, ctx), Catch::Contains("hub.http") && Catch::Contains("cannot listen"));
}

#else

TEST_CASE("hub.http in a build without cpp-httplib is a configuration error", "[unit][hub][http]") {
  test::TempDir dir;
  HubConfig cfg = test::small_hub_config({"a"}, dir.path());
  cfg.hub.http = "127.0.0.1:0";
  zmq::context_t ctx;
  CHECK_THROWS_AS(HubServer(cfg, ctx), ConfigError);
}

#endif

TEST_CASE("ctl.json: the hub writes how to reach it; pcmoe-ctl --run reads it", "[integration][hub]") {
  test::TempDir dir;
  HubConfig cfg = test::small_hub_config({"a"}, dir.path() + "/hub");
  cfg.hub.bind = "tcp://127.0.0.1:*";  // ephemeral: ctl.json has the port
  RunningHub hub(cfg);
  CtlTarget t = target_from_run_dir(dir.path());  // finds DIR/hub/ctl.json
  CHECK(t.endpoint == hub.endpoint());
  CHECK(t.server_key.empty());
  CHECK(!t.client_keys);
  CHECK(t.stale_note.empty());
  CHECK(target_from_run_dir(dir.path() + "/hub").endpoint == hub.endpoint());
  zmq::context_t ctx;
  auto st = ctl_call(ctx, t, proto::StatusRequest{false});
  REQUIRE(st);
  CHECK(std::holds_alternative<proto::Status>(*st));
  CHECK_THROWS_WITH(target_from_run_dir(dir.path() + "/nothing"),
                    Catch::Contains("nothing/ctl.json nor") && Catch::Contains("hub.out_dir"));
  dir.write("bad/ctl.json", "{\"endpoint\": 5}");
  CHECK_THROWS_WITH(target_from_run_dir(dir.path() + "/bad"),
                    Catch::Contains("not the ctl.json a pcmoe-hub writes"));
}
