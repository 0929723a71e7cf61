// Every file in configs/ loads, and the shipped federation is secure and keeps its models by
// default: CURVE with key files (made here with the keygen layout, in a copy of configs/), no
// plain mode, periodic snapshots and checkpoints. Plain mode needs insecure: true and loopback
// endpoints; a missing key says what to do.
#include <catch2/catch.hpp>

#include <filesystem>

#include "common/hub_config.h"
#include "common/party_config.h"
#include "common/run_config.h"
#include "net/curve.h"
#include "test_util.h"

using namespace pcmoe;
namespace stdfs = std::filesystem;

namespace {

// A copy of configs/ with keys/ made as `pcmoe-ctl keygen --dir configs/keys --names ...` would.
std::string configs_with_keys(const test::TempDir& dir) {
  const std::string root = dir.path() + "/configs";
  stdfs::copy(test::source_dir() + "/configs", root, stdfs::copy_options::recursive);
  stdfs::create_directories(root + "/keys");
  for (const char* name : {"hub", "operator", "party-a", "party-b", "party-c"}) {
    const net::CurveKeyPair k = net::generate_keypair();
    net::write_key_file(root + "/keys/" + name + ".key", k);
    net::write_public_key_file(root + "/keys/" + name + ".pub", k.public_key);
  }
  return root;
}

}  // namespace

TEST_CASE("shipped configs: every file loads; the federation is CURVE, snapshots and checkpoints",
          "[unit][config]") {
  test::TempDir dir;
  const std::string root = configs_with_keys(dir);
  const HubConfig hub = load_hub_config(root + "/hub.yaml", {});
  CHECK(hub.curve());
  CHECK(hub.hub.parties.size() == 3);
  for (const auto& p : hub.hub.parties) CHECK(net::is_z85_key(p.public_key));
  CHECK(hub.hub.snapshot_every > 0);
  CHECK_FALSE(hub.hub.ctl_key_file.empty());
  for (const char* id : {"a", "b", "c"}) {
    INFO("party " << id);
    const PartyConfig p = load_party_config(root + "/party-" + id + ".yaml", {}, /*check_data=*/false);
    CHECK(p.curve());
    CHECK(p.party.curve.hub_public_key == net::read_public_key_file(root + "/keys/hub.pub"));
    CHECK(p.run.checkpoint_every > 0);
  }
  if (!stdfs::exists("/usr/share/games/fortunes") || !stdfs::exists("/usr/include/linux")) {
    WARN("the demo corpora are missing: the central and isolated configs are not loaded");
    return;
  }
  for (const auto& e : stdfs::directory_iterator(root)) {
    const std::string name = e.path().filename().string();
    if (e.path().extension() != ".yaml" || name == "hub.yaml" || name.rfind("party-", 0) == 0) continue;
    INFO(name);
    CHECK_NOTHROW(load_central_config(e.path().string(), {}));
  }
}

TEST_CASE("shipped configs without keys: a clear error; plain mode only with insecure and loopback",
          "[unit][config]") {
  test::TempDir dir;
  const std::string root = dir.path() + "/configs";
  stdfs::copy(test::source_dir() + "/configs", root, stdfs::copy_options::recursive);
  CHECK_THROWS_WITH(
      load_hub_config(root + "/hub.yaml", {}),
      Catch::Contains("party-a.pub' not found") && Catch::Contains("hub.parties[0].public_key_file"));
  CHECK_THROWS_WITH(load_hub_config(root + "/hub.yaml", {"hub.secret_key_file="}),
                    Catch::Contains("CURVE is on by default") && Catch::Contains("pcmoe-ctl keygen --dir") &&
                        Catch::Contains("hub.insecure: true"));
  CHECK_FALSE(load_hub_config(root + "/hub.yaml", {"hub.insecure=true"}).curve());
  CHECK_THROWS_WITH(
      load_hub_config(root + "/hub.yaml", {"hub.insecure=true", "hub.bind=tcp://*:5555"}),
      Catch::Contains("--set: key 'hub.bind'") && Catch::Contains("is not a loopback endpoint"));
  CHECK_NOTHROW(load_hub_config(root + "/hub.yaml", {"hub.insecure=true", "hub.bind=ipc:///tmp/pcmoe-hub"}));
  const std::string party = root + "/party-a.yaml";
  CHECK_THROWS_WITH(load_party_config(party, {"party.curve.hub_public_key_file="}, false),
                    Catch::Contains("party.curve.hub_public_key") && Catch::Contains("missing"));
  CHECK_NOTHROW(load_party_config(party, {"party.insecure=true"}, false));
  for (const char* bad : {"party.hub=tcp://10.0.0.1:5555", "party.expert_bind=tcp://*:7000",
                          "party.expert_advertise=tcp://a.example.org:7000"}) {
    INFO(bad);
    CHECK_THROWS_WITH(load_party_config(party, {"party.insecure=true", bad}, false),
                      Catch::Contains("is not a loopback endpoint") && Catch::Contains("party.insecure"));
  }
}

TEST_CASE("party config: the privacy and audit keys are checked at load", "[unit][config][audit]") {
  const std::string party = test::source_dir() + "/configs/party-a.yaml";
  const std::vector<std::string> plain = {"party.insecure=true"};
  auto with = [&](const std::string& kv) {
    auto sets = plain;
    sets.push_back(kv);
    return sets;
  };
  const PartyConfig off = load_party_config(party, plain, false);
  CHECK(off.audit.capture == "off");  // never on by default
  CHECK_FALSE(off.audit.received());
  CHECK(load_party_config(party, with("audit.capture=both"), false).audit.sent());
  CHECK_THROWS_WITH(load_party_config(party, with("audit.capture=all"), false),
                    Catch::Contains("audit.capture") && Catch::Contains("off, received, sent, both"));
  CHECK_THROWS_WITH(load_party_config(party, with("audit.capture_every=0"), false),
                    Catch::Contains("audit.capture_every"));
  CHECK_THROWS_WITH(load_party_config(party, with("privacy.row_clip=-1"), false),
                    Catch::Contains("privacy.row_clip"));
  CHECK_THROWS_WITH(load_party_config(party, with("privacy.dp_delta=0"), false),
                    Catch::Contains("privacy.dp_delta"));
  CHECK(off.privacy.hub_report == "full");
  CHECK(load_party_config(party, with("privacy.hub_report=minimal"), false).privacy.hub_report == "minimal");
  CHECK_THROWS_WITH(load_party_config(party, with("privacy.hub_report=none"), false),
                    Catch::Contains("privacy.hub_report"));
  auto sets = with("privacy.rotate_hidden=true");
  CHECK(load_party_config(party, sets, false).privacy.rotate_hidden);
  sets.push_back("model.norm=layernorm");
  CHECK_THROWS_WITH(load_party_config(party, sets, false),
                    Catch::Contains("privacy.rotate_hidden") && Catch::Contains("rmsnorm"));
}

TEST_CASE("the main job's model hash is what it was before train.expert_lr_scale existed", "[unit][config]") {
  // A hub resumes a run only under the same model hash: a key added later, left at its default,
  // must not change the hash of a preset saved before it (ddea88ebe7a13a44: party a of
  // scripts/run-federation.sh, 600 steps, as logged by pcmoe-party before the key was added).
  test::TempDir dir;
  const std::string root = configs_with_keys(dir);
  const std::vector<std::string> sets = {"train.steps=600", "train.warmup_steps=50", "train.eval_every=100"};
  PartyConfig p = load_party_config(root + "/party-a.yaml", sets, /*check_data=*/false);
  CHECK(model_config_hash(p.model, p.train) == "ddea88ebe7a13a44");
  p.train.expert_lr_scale = 2;  // set, it is part of the hash
  CHECK(model_config_hash(p.model, p.train) != "ddea88ebe7a13a44");
}
