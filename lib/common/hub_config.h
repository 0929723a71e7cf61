// Owns the configuration of the hub daemon (pcmoe-hub): the shared preset (`preset:`) whose hash
// parties must match, and the `hub:` block — endpoint, expected parties and their keys, turn
// schedule, timeouts, snapshots, logging.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/config_schema.h"
#include "common/model_config.h"

namespace pcmoe {

struct HubPartyEntry {
  std::string id;
  std::string public_key;       // the party's CURVE public key (Z85); required when CURVE is on
  std::string public_key_file;  // or a file holding it (read at load into public_key)
};

// Someone allowed to send control commands and status requests (pcmoe-ctl with this key pair).
struct HubOperatorEntry {
  std::string id;
  std::string public_key;       // Z85
  std::string public_key_file;  // or a file holding it (read at load into public_key)
};

struct HubSettings {
  std::string bind = "tcp://127.0.0.1:5555";
  std::vector<HubPartyEntry> parties;  // the federation: training starts when all have joined
  int steps_per_turn = 1;
  std::string schedule = "sequential";  // sequential | concurrent
  int round_deadline_ms = 60000;        // concurrent: a step not done by then is left out of its round
  uint64_t seed = 42;                   // seed of the randomised round-robin turn order
  int heartbeat_ms = 1000;
  int party_timeout_ms = 10000;  // a party silent this long is marked lost
  int64_t snapshot_every = 100;  // steps between expert-pool snapshots; 0 = at the start, the end, on request
  int load_window_steps = 50;    // window of the windowed global expert load
  std::string out_dir = "runs/hub";
  bool resume = true;        // a restarted hub continues from <out_dir>/hub_state.json
  int64_t state_every = 10;  // global steps between writes of hub_state.json; 0 = checkpoints, snapshots, end
  std::string secret_key_file;              // the hub's CURVE key pair file; required unless insecure
  bool insecure = false;                    // plain mode: no CURVE, loopback endpoints only
  std::vector<HubOperatorEntry> operators;  // keys allowed to control the hub and read its status
  std::string ctl_key_file;  // this host's operator key pair (pcmoe-ctl --run/--config use it); an operator
  std::string log_level = "info";
  std::string log_file;            // "" = stderr
  bool exit_when_done = true;      // exit after training finished and parties said bye
  bool final_snapshot = true;      // collect the expert pool at the end (parties export with it)
  std::string http;                // "" = off; else HOST:PORT of the read-only status page and /metrics
  bool http_allow_remote = false;  // allow an http address other than the loopback
};

// hub.http parsed: an IPv4 literal, [IPv6 literal] or localhost, and a port (0: any free port).
struct HttpAddress {
  std::string host;  // as bound: "127.0.0.1", "::1", "0.0.0.0"
  int port = 0;
  bool loopback = false;  // 127.0.0.0/8, ::1 or localhost
  std::string url_host() const { return host.find(':') != std::string::npos ? "[" + host + "]" : host; }
};
// Throws ConfigError (without the key's location: callers add it) for anything else.
HttpAddress parse_http_address(const std::string& text);

struct HubConfig {
  // CURVE is on (the default): not insecure.
  bool curve() const { return !hub.insecure; }
  ModelConfig model;
  TrainConfig train;
  HubSettings hub;
  // Not a YAML key: where each key was set ("file:line" or --set), for errors found later (a
  // hub.bind that does not parse or bind).
  config::Origins origins;
};

config::Schema<HubConfig> hub_schema();
// `read_keys` false: the key settings are neither required nor read (pcmoe-central's protocol mode
// reads a hub config for its turn schedule only).
HubConfig load_hub_config(const std::string& path, const std::vector<std::string>& overrides,
                          bool read_keys = true);

}  // namespace pcmoe
