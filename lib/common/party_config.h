// Owns the configuration of one party daemon (pcmoe-party): the shared preset (referenced with
// `preset:`), the party's identity and network settings (`party:`), its privacy defences
// (`privacy:`), its private data (`data:`) and run settings (`run:`; run.seed is the private
// backbone seed, 0 = draw one from the OS and keep it in run.out_dir/backbone.seed).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/config_schema.h"
#include "common/data_config.h"
#include "common/model_config.h"
#include "common/run_config.h"

namespace pcmoe {

struct CurveConfig {
  std::string secret_key_file;      // this participant's key pair file (pcmoe-ctl keygen)
  std::string hub_public_key;       // the hub's public key (Z85), or
  std::string hub_public_key_file;  // a file holding it (read at load into hub_public_key)
};

struct PartyNetConfig {
  std::string id;                                 // unique party id, e.g. "a"
  std::string hub = "tcp://127.0.0.1:5555";       // the hub's control endpoint
  std::string expert_bind = "tcp://127.0.0.1:*";  // where this party's expert service binds
  std::string expert_advertise;                   // endpoint the others connect to ("" = the bound one)
  uint64_t memory_limit_mb = 0;                   // device memory budget; 0 = no limit
  std::string wire_dtype = "auto";                // on the wire: auto|fp32|bf16|fp16|fp8|fp8e4m3|fp8e5m2
  int max_request_rows = 2048;  // rows per expert request; a host's rows of a layer go in several (0 = one)
  int links_per_host = 1;       // connections to each host; a layer's requests to it spread over them
  int heartbeat_ms = 1000;
  int request_timeout_ms = 30000;  // a host that does not answer in time fails the step
  int hub_timeout_ms = 30000;      // give up on the hub after this long without a message
  bool insecure = false;           // plain mode: no CURVE, loopback endpoints only
  CurveConfig curve;
};

struct PrivacyConfig {
  double row_clip = 0.0;            // > 0: every row sent to a host is clipped to this L2 norm first
  double row_noise_std = 0.0;       // Gaussian noise on rows sent to hosts: std in units of row_clip when
                                    // row_clip > 0 (a Gaussian mechanism, accounted), else of each row's RMS
  double dp_delta = 1e-6;           // the delta of the (epsilon, delta) the party logs for its rows
  std::string local_only_layers;    // MoE layers that route only to this party's own experts ("1,3")
  bool rotate_hidden = false;       // the backbone's hidden space turned by a private random rotation at init
  bool shared_init = false;         // the backbone starts from the federation's shared initialisation (the
                                    // leaking case of fine-tuning one public checkpoint; warns loudly)
  std::string hub_report = "full";  // full | minimal: losses withheld (-1), routing counts and gates zero
};

// Privacy audits only (pcmoe-attack); off by default, loud when on.
struct AuditConfig {
  std::string capture = "off";  // off | received (as a host) | sent (as a requester: token ids) | both
  std::string capture_dir;      // "" = run.out_dir/audit
  int capture_every = 1;        // capture train steps s with s % capture_every == 0
  int capture_max_mb = 256;     // per file; capture stops there (audit.capture_full)
  bool received() const { return capture == "received" || capture == "both"; }
  bool sent() const { return capture == "sent" || capture == "both"; }
};

struct PartyConfig {
  // CURVE is on (the default): not party.insecure.
  bool curve() const { return !party.insecure; }
  ModelConfig model;
  TrainConfig train;
  PartyNetConfig party;
  PrivacyConfig privacy;
  AuditConfig audit;
  DataConfig data;
  RunConfig run;
  // Not a YAML key: where each key was set ("file:line" or --set), so that a value found wrong
  // later (an endpoint that does not parse or bind) is reported where the operator can fix it.
  config::Origins origins;
};

config::Schema<PartyConfig> party_schema();
// The layer indices of privacy.local_only_layers (empty: none). Throws ConfigError for a list that
// does not parse (load_party_config checks it).
std::vector<int> local_only_layer_indices(const PartyConfig& c);
// Loads --config, applies --set overrides, validates (data paths exist, endpoints parse, ...).
// Throws ConfigError naming file, line and key.
// `read_keys` false: the key and plain-mode settings are neither required nor read (pcmoe-central's
// protocol mode simulates a party from its config).
PartyConfig load_party_config(const std::string& path, const std::vector<std::string>& overrides,
                              bool check_data = true, bool read_keys = true);

}  // namespace pcmoe
