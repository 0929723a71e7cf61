// Schema and validation of a party's configuration (see party_config.h).
#include "common/party_config.h"

#include <fmt/format.h>

#include <cctype>

namespace pcmoe {

static config::Schema<CurveConfig> curve_schema() {
  config::Schema<CurveConfig> s;
  s.field("secret_key_file", &CurveConfig::secret_key_file,
          "this participant's CURVE key pair file (pcmoe-ctl keygen); \"\" = CURVE off")
      .field("hub_public_key", &CurveConfig::hub_public_key,
             "the hub's CURVE public key (Z85, 40 chars); required when CURVE is on");
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
             "rows per expert request (about: one expert's rows are never split): a host's rows of one layer "
             "go in several requests, so the wire, the host's compute and the replies overlap (0 = one "
             "request per host and layer)",
             config::in_range(0, 1 << 24))
      .field("heartbeat_ms", &PartyNetConfig::heartbeat_ms, "milliseconds between heartbeats to the hub",
             config::in_range(50, 600000))
      .field("request_timeout_ms", &PartyNetConfig::request_timeout_ms,
             "milliseconds to wait for an expert host before failing the step",
             config::in_range(100, 3600000))
      .field("hub_timeout_ms", &PartyNetConfig::hub_timeout_ms,
             "milliseconds without any message from the hub before giving up (exit 3)",
             config::in_range(100, 86400000))
      .section("curve", &PartyNetConfig::curve, curve_schema());
  return s;
}

static config::Schema<PrivacyConfig> privacy_schema() {
  config::Schema<PrivacyConfig> s;
  s.field("row_noise_std", &PrivacyConfig::row_noise_std,
          "Gaussian noise added to every row sent to a host, as a fraction of the row's RMS (0 = off)",
          config::non_negative<double>())
      .field("local_only_layers", &PrivacyConfig::local_only_layers,
             "MoE layers (comma list) whose tokens go only to this party's own experts, so their rows never "
             "leave")
      .field("shared_init", &PrivacyConfig::shared_init,
             "true if the backbone starts from a shared/public checkpoint: hosts can then decode served "
             "rows; pcmoe warns and recommends the defences above");
  return s;
}

config::Schema<PartyConfig> party_schema() {
  config::Schema<PartyConfig> s;
  s.section("model", &PartyConfig::model, model_schema())
      .section("train", &PartyConfig::train, train_schema())
      .section("party", &PartyConfig::party, party_net_schema())
      .section("privacy", &PartyConfig::privacy, privacy_schema())
      .section("data", &PartyConfig::data, data_schema())
      .section("run", &PartyConfig::run, run_schema())
      .include_key("preset");
  return s;
}

PartyConfig load_party_config(const std::string& path, const std::vector<std::string>& overrides,
                              bool check_data) {
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
  if (!c.party.curve.secret_key_file.empty() && c.party.curve.hub_public_key.size() != 40) {
    throw ConfigError(
        fmt::format("{}: CURVE is on (party.curve.secret_key_file is set) but the hub's public key is {} "
                    "(expected 40 Z85 characters; `pcmoe-ctl keygen` prints it)",
                    origins.describe("party.curve.hub_public_key"),
                    c.party.curve.hub_public_key.empty() ? "missing" : "malformed"));
  }
  if (!c.party.curve.secret_key_file.empty()) {
    c.party.curve.secret_key_file = config::resolve_relative(path, c.party.curve.secret_key_file);
  }
  // Validate local-only layers against the model.
  if (!c.privacy.local_only_layers.empty()) {
    ModelConfig probe = c.model;
    probe.moe_layers = c.privacy.local_only_layers;
    std::vector<int> layers;
    try {
      layers = probe.moe_layer_indices();
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
  return c;
}

}  // namespace pcmoe
