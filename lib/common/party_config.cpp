// Schema and validation of a party's configuration (see party_config.h).
#include "common/party_config.h"

#include <fmt/format.h>

#include <cctype>

#include "common/key_file.h"
#include "common/plain_mode.h"

namespace pcmoe {

static config::Schema<CurveConfig> curve_schema() {
  config::Schema<CurveConfig> s;
  s.field("secret_key_file", &CurveConfig::secret_key_file,
          "this party's CURVE key pair file (pcmoe-ctl keygen; relative to this file); required unless "
          "party.insecure")
      .field("hub_public_key", &CurveConfig::hub_public_key,
             "the hub's CURVE public key (Z85, 40 chars); this or hub_public_key_file is required unless "
             "party.insecure")
      .field("hub_public_key_file", &CurveConfig::hub_public_key_file,
             "a file with the hub's public key (pcmoe-ctl keygen --public-out; relative to this file)");
  return s;
}

static config::Schema<PartyNetConfig> party_net_schema() {
  config::Schema<PartyNetConfig> s;
  s.field("id", &PartyNetConfig::id,
          "unique party id (letters, digits, '-', '_'), listed in the hub's config", config::non_empty())
      .field("hub", &PartyNetConfig::hub, "the hub's control endpoint, e.g. tcp://10.0.0.1:5555",
             config::non_empty())
      .field("expert_bind", &PartyNetConfig::expert_bind,
             "where this party's expert service binds; tcp://host:* picks a free port", config::non_empty())
      .field("expert_advertise", &PartyNetConfig::expert_advertise,
             "endpoint the other parties connect to (\"\" = the bound endpoint)")
      .field("memory_limit_mb", &PartyNetConfig::memory_limit_mb,
             "device memory budget in MiB; the party refuses to start if its footprint does not fit (0 = no "
             "limit)")
      .field("wire_dtype", &PartyNetConfig::wire_dtype,
             "dtype of activations and gradients on the wire: auto (bf16 on CUDA, fp32 on CPU), fp32, bf16, "
             "fp16, fp8 (8-bit floats with one scale per row: fp8e4m3; every host must speak protocol 1.1), "
             "fp8e4m3, fp8e5m2",
             config::one_of({"auto", "fp32", "bf16", "fp16", "fp8", "fp8e4m3", "fp8e5m2"}))
      .field("max_request_rows", &PartyNetConfig::max_request_rows,
             "rows per expert request, at most: a host's rows of one layer go in several requests (experts "
             "share one while they fit; an expert with more rows gets several of its own), so the wire, the "
             "host's compute and the replies overlap (0 = one request per host and layer)",
             config::in_range(0, 1 << 24))
      .field("links_per_host", &PartyNetConfig::links_per_host,
             "connections to each expert host, each with a thread of its own: a layer's requests to one host "
             "spread over them (a request's backward on its forward's connection), so one host's rows "
             "are not limited to one TCP stream",
             config::in_range(1, 8))
      .field("heartbeat_ms", &PartyNetConfig::heartbeat_ms, "milliseconds between heartbeats to the hub",
             config::in_range(50, 600000))
      .field("request_timeout_ms", &PartyNetConfig::request_timeout_ms,
             "milliseconds to wait for an expert host before failing the step",
             config::in_range(100, 3600000))
      .field("hub_timeout_ms", &PartyNetConfig::hub_timeout_ms,
             "milliseconds without any message from the hub before giving up (exit 3)",
             config::in_range(100, 86400000))
      .field("insecure", &PartyNetConfig::insecure,
             "plain mode: no CURVE (no authentication, no encryption: any local process can send this "
             "party's experts requests as another party); party.hub, expert_bind and expert_advertise must "
             "be loopback endpoints; key settings are not read")
      .section("curve", &PartyNetConfig::curve, curve_schema());
  return s;
}

namespace {

void check_plain_endpoints(const PartyConfig& c) {
  for (const char* key : {"party.hub", "party.expert_bind", "party.expert_advertise"}) {
    const std::string& e = key == std::string("party.hub")           ? c.party.hub
                           : key == std::string("party.expert_bind") ? c.party.expert_bind
                                                                     : c.party.expert_advertise;
    if (!e.empty() && plain_mode::refuses(e)) {
      throw ConfigError(plain_mode::not_local_error(c.origins.describe(key), e, "party.insecure"));
    }
  }
}

void check_keys(PartyConfig& c, const std::string& path) {
  if (c.party.insecure) {
    check_plain_endpoints(c);
    return;  // key settings are not read
  }
  auto& curve = c.party.curve;
  if (curve.secret_key_file.empty()) {
    throw ConfigError(fmt::format(
        "{}: CURVE is on by default and needs this party's key pair file (pcmoe-ctl keygen --out FILE "
        "--public-out FILE.pub; the hub lists FILE.pub in hub.parties[].public_key_file), or set "
        "party.insecure: true for a development run on this host only (no authentication, no encryption)",
        c.origins.describe("party.curve.secret_key_file")));
  }
  curve.secret_key_file = config::resolve_relative(path, curve.secret_key_file);
  if (!curve.hub_public_key_file.empty()) {
    if (!curve.hub_public_key.empty()) {
      throw ConfigError(c.origins.describe("party.curve.hub_public_key_file") +
                        ": set hub_public_key or hub_public_key_file, not both");
    }
    config::at_config_key(c.origins, "party.curve.hub_public_key_file", [&] {
      curve.hub_public_key = keys::read_public_key(config::resolve_relative(path, curve.hub_public_key_file));
    });
  }
  if (!keys::is_z85_key(curve.hub_public_key)) {
    throw ConfigError(fmt::format(
        "{}: the hub's public key is {} (expected 40 Z85 characters: `pcmoe-ctl keygen` prints it; "
        "or name its file in party.curve.hub_public_key_file)",
        c.origins.describe("party.curve.hub_public_key"),
        curve.hub_public_key.empty() ? "missing" : "malformed"));
  }
}

}  // namespace

static config::Schema<PrivacyConfig> privacy_schema() {
  config::Schema<PrivacyConfig> s;
  s.field("row_clip", &PrivacyConfig::row_clip,
          "> 0: every row sent to a host is first clipped to this L2 norm, so that row_noise_std is a "
          "Gaussian mechanism with an (epsilon, delta) (logged as privacy.row_mechanism; README "
          "Privacy); 0 = off",
          config::non_negative<double>())
      .field("row_noise_std", &PrivacyConfig::row_noise_std,
             "Gaussian noise added to every row sent to a host: its std in units of row_clip when "
             "row_clip > 0, else as a fraction of the row's RMS (no formal guarantee); 0 = off",
             config::non_negative<double>())
      .field("dp_delta", &PrivacyConfig::dp_delta,
             "the delta of the (epsilon, delta) logged for the rows (0 < delta < 1)",
             config::in_range<double>(1e-300, 0.5))
      .field("local_only_layers", &PrivacyConfig::local_only_layers,
             "MoE layers (comma list) whose tokens go only to this party's own experts, so their rows "
             "never leave")
      .field("rotate_hidden", &PrivacyConfig::rotate_hidden,
             "true: the backbone's hidden space is turned by a private random rotation at "
             "initialisation (model unchanged; needs model.norm rmsnorm), so a host whose backbone "
             "shares the initialisation cannot read the rows in its own coordinates")
      .field("shared_init", &PrivacyConfig::shared_init,
             "true: the backbone starts from the federation's shared initialisation (every party the "
             "same, as when all fine-tune one public checkpoint), not from the private seed: hosts can "
             "then decode served rows; pcmoe warns loudly and recommends the defences above")
      .field("hub_report", &PrivacyConfig::hub_report,
             "what each step report tells the hub: full (training and held-out loss, routing counts and "
             "mean gates: the hub's status, plots and global expert load) or minimal (losses -1, counts "
             "and gates zero: tokens, timings, bytes and memory only; the hub can then match nothing to "
             "a corpus, and the global expert load of model.router.balance_bias_rate stays uniform)",
             config::one_of({"full", "minimal"}));
  return s;
}

static config::Schema<AuditConfig> audit_schema() {
  config::Schema<AuditConfig> s;
  s.field("capture", &AuditConfig::capture,
          "privacy audits only: off | received (as a host: rows, expert ids, request ids, steps of "
          "every train request) | sent (as a requester: the token id behind each row it sent, kept "
          "locally) | both; warned loudly",
          config::one_of({"off", "received", "sent", "both"}))
      .field("capture_dir", &AuditConfig::capture_dir,
             "where the capture files go (received.cap, sent.cap); \"\" = run.out_dir/audit")
      .field("capture_every", &AuditConfig::capture_every,
             "capture train steps s with s % capture_every == 0", config::in_range(1, 1000000))
      .field("capture_max_mb", &AuditConfig::capture_max_mb,
             "size limit of each capture file (capture stops there)", config::in_range(1, 1 << 20));
  return s;
}

config::Schema<PartyConfig> party_schema() {
  config::Schema<PartyConfig> s;
  s.section("model", &PartyConfig::model, model_schema())
      .section("train", &PartyConfig::train, train_schema())
      .section("party", &PartyConfig::party, party_net_schema())
      .section("privacy", &PartyConfig::privacy, privacy_schema())
      .section("audit", &PartyConfig::audit, audit_schema())
      .section("data", &PartyConfig::data, data_schema())
      .section("run", &PartyConfig::run, run_schema())
      .include_key("preset");
  return s;
}

std::vector<int> local_only_layer_indices(const PartyConfig& c) {
  if (c.privacy.local_only_layers.empty()) return {};
  ModelConfig probe = c.model;
  probe.moe_layers = c.privacy.local_only_layers;
  return probe.moe_layer_indices();
}

PartyConfig load_party_config(const std::string& path, const std::vector<std::string>& overrides,
                              bool check_data, bool read_keys) {
  PartyConfig c;
  c.run.seed = 0;  // parties draw a private seed unless one is configured
  c.run.out_dir = "runs/party";
  config::Origins& origins = c.origins;
  auto schema = party_schema();
  schema.load_file(path, c, &origins);
  for (const auto& o : overrides) schema.apply_override(o, c, &origins);
  validate(c.model, origins);
  validate(c.train, origins);
  if (check_data) validate(c.data, origins);
  for (char ch : c.party.id) {
    if (!(std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_')) {
      throw ConfigError(fmt::format("{}: party id '{}' may only contain letters, digits, '-' and '_'",
                                    origins.describe("party.id"), c.party.id));
    }
  }
  if (c.party.id.size() > 64)
    throw ConfigError(origins.describe("party.id") + ": party id longer than 64 characters");
  if (read_keys) check_keys(c, path);
  // Validate local-only layers against the model.
  if (!c.privacy.local_only_layers.empty()) {
    std::vector<int> layers;
    try {
      layers = local_only_layer_indices(c);
    } catch (const ConfigError& e) {
      throw ConfigError(origins.describe("privacy.local_only_layers") + ": " + e.what());
    }
    for (int l : layers) {
      if (!c.model.is_moe_layer(l)) {
        throw ConfigError(
            fmt::format("{}: layer {} is not a MoE layer", origins.describe("privacy.local_only_layers"), l));
      }
    }
  }
  if (c.privacy.rotate_hidden && c.model.norm != "rmsnorm") {
    throw ConfigError(
        fmt::format("{}: needs model.norm: rmsnorm, found '{}' (a layer norm's mean does not "
                    "commute with a rotation of the hidden space)",
                    origins.describe("privacy.rotate_hidden"), c.model.norm));
  }
  return c;
}

}  // namespace pcmoe
