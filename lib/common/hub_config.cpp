// Schema and validation of the hub's configuration (see hub_config.h).
#include "common/hub_config.h"

#include <fmt/format.h>

#include <set>

#include "common/key_file.h"
#include "common/plain_mode.h"

namespace pcmoe {

static config::Schema<HubPartyEntry> hub_party_schema() {
  config::Schema<HubPartyEntry> s;
  s.field("id", &HubPartyEntry::id, "party id (must match party.id in that party's config)",
          config::non_empty())
      .field("public_key", &HubPartyEntry::public_key,
             "the party's CURVE public key (Z85); this or public_key_file is required unless hub.insecure")
      .field("public_key_file", &HubPartyEntry::public_key_file,
             "a file with the party's public key (pcmoe-ctl keygen --public-out; relative to this file)");
  return s;
}

static config::Schema<HubOperatorEntry> hub_operator_schema() {
  config::Schema<HubOperatorEntry> s;
  s.field("id", &HubOperatorEntry::id, "a name for the operator (logged with each command)",
          config::non_empty())
      .field("public_key", &HubOperatorEntry::public_key, "the operator's CURVE public key (Z85)")
      .field("public_key_file", &HubOperatorEntry::public_key_file,
             "or a file with it (relative to this file)");
  return s;
}

static config::Schema<HubSettings> hub_settings_schema() {
  config::Schema<HubSettings> s;
  s.field("bind", &HubSettings::bind, "control endpoint the hub binds (parties and pcmoe-ctl connect here)",
          config::non_empty())
      .list("parties", &HubSettings::parties, hub_party_schema(),
            "the parties of the federation; training starts when all have joined")
      .field("steps_per_turn", &HubSettings::steps_per_turn, "optimizer steps a party takes per turn",
             config::in_range(1, 1000000))
      .field("schedule", &HubSettings::schedule,
             "sequential: one party trains at a time (randomised round-robin turns, as in the PC-MoE paper); "
             "concurrent: every live party trains each global step at once and every expert takes one "
             "optimizer step per round on the mean of the parties' gradients (README, PROTOCOL.md 9.6)",
             config::one_of({"sequential", "concurrent"}))
      .field("round_deadline_ms", &HubSettings::round_deadline_ms,
             "concurrent rounds: a party whose step is not done this long after the round opened is left "
             "out of it (the round's expert update is then dropped)",
             config::in_range(100, 86400000))
      .field("seed", &HubSettings::seed, "seed of the randomised round-robin turn order (logged)")
      .field("heartbeat_ms", &HubSettings::heartbeat_ms,
             "the parties' heartbeat interval this hub expects (their party.heartbeat_ms); the hub answers "
             "each heartbeat and party_timeout_ms must exceed it",
             config::in_range(50, 600000))
      .field("party_timeout_ms", &HubSettings::party_timeout_ms,
             "a party silent this long is marked lost and its experts masked",
             config::in_range(100, 86400000))
      .field("snapshot_every", &HubSettings::snapshot_every,
             "global steps between expert-pool snapshots (a lost host's experts come from the last one); 0 = "
             "only when training starts, at the end and on request",
             config::non_negative<int64_t>())
      .field("load_window_steps", &HubSettings::load_window_steps, "steps in the windowed global expert load",
             config::in_range(1, 1000000))
      .field("out_dir", &HubSettings::out_dir,
             "directory for pool snapshots, router statistics and the hub's state", config::non_empty())
      .field("resume", &HubSettings::resume,
             "continue the run saved in <out_dir>/hub_state.json when it exists (global step, turn order, "
             "expert load, pool.pcmoe); false = start at step 0 and overwrite it")
      .field("state_every", &HubSettings::state_every,
             "global steps between writes of hub_state.json (between turns; also at checkpoints, snapshots "
             "and the end); 0 = only then",
             config::non_negative<int64_t>())
      .field("secret_key_file", &HubSettings::secret_key_file,
             "the hub's CURVE key pair file (pcmoe-ctl keygen; relative to this file); required unless "
             "insecure")
      .field("insecure", &HubSettings::insecure,
             "plain mode: no CURVE (no authentication, no encryption; anyone who reaches hub.bind can "
             "register as any party and control the hub); hub.bind must be a loopback endpoint; key "
             "settings are not read")
      .list("operators", &HubSettings::operators, hub_operator_schema(),
            "keys allowed to send control commands and status requests (pcmoe-ctl --key); parties' keys "
            "and the hub's own are not")
      .field("ctl_key_file", &HubSettings::ctl_key_file,
             "the operator key pair of pcmoe-ctl on this host (pcmoe-ctl keygen): its public key is an "
             "operator, and pcmoe-ctl --run/--config use it (\"\" = none)")
      .field("log_level", &HubSettings::log_level, "debug, info, warn, error or off",
             config::one_of({"debug", "info", "warn", "error", "off"}))
      .field("log_file", &HubSettings::log_file, "JSON-lines log file (\"\" = stderr)")
      .field("exit_when_done", &HubSettings::exit_when_done,
             "exit once training has finished and every party has said bye")
      .field("final_snapshot", &HubSettings::final_snapshot,
             "collect the expert pool at the end, which parties export their models with (benchmarks turn it "
             "off)")
      .field("http", &HubSettings::http,
             "\"\" = off; HOST:PORT (e.g. 127.0.0.1:8080; port 0 = any free one) serves a read-only status "
             "page (/), its JSON (/status.json) and Prometheus metrics (/metrics); no control. Only loopback "
             "addresses unless http_allow_remote")
      .field("http_allow_remote", &HubSettings::http_allow_remote,
             "allow hub.http on a non-loopback address (0.0.0.0, a LAN address): anyone who reaches it sees "
             "party ids, endpoints, losses, memory and expert load; put it behind a firewall or proxy");
  return s;
}

namespace {

// The public key of a `public_key` / `public_key_file` pair (files relative to the config file).
std::string public_key_of(const std::string& key, const std::string& file, const std::string& config_path,
                          const config::Origins& origins, const std::string& prefix) {
  if (!key.empty() && !file.empty()) {
    throw ConfigError(fmt::format("{}: set public_key or public_key_file, not both",
                                  origins.describe(prefix + ".public_key_file")));
  }
  if (file.empty()) {
    if (!keys::is_z85_key(key)) {
      throw ConfigError(
          fmt::format("{}: {} public key (expected 40 Z85 characters from `pcmoe-ctl keygen`, or "
                      "public_key_file)",
                      origins.describe(prefix + ".public_key"), key.empty() ? "no" : "a malformed"));
    }
    return key;
  }
  std::string out;
  config::at_config_key(origins, prefix + ".public_key_file",
                        [&] { out = keys::read_public_key(config::resolve_relative(config_path, file)); });
  return out;
}

void check_keys(HubConfig& c, const std::string& path) {
  const config::Origins& origins = c.origins;
  if (c.hub.insecure) {
    if (plain_mode::refuses(c.hub.bind)) {
      throw ConfigError(
          plain_mode::not_local_error(origins.describe("hub.bind"), c.hub.bind, "hub.insecure"));
    }
    return;  // key settings are not read
  }
  if (c.hub.secret_key_file.empty()) {
    throw ConfigError(fmt::format(
        "{}: CURVE is on by default and needs the hub's key pair file: make the federation's keys with "
        "`pcmoe-ctl keygen --dir DIR hub operator party-a ...` (then set hub.secret_key_file, "
        "hub.parties[].public_key_file, hub.ctl_key_file), or set hub.insecure: true for a development run "
        "on this host only (no authentication, no encryption)",
        origins.describe("hub.secret_key_file")));
  }
  c.hub.secret_key_file = config::resolve_relative(path, c.hub.secret_key_file);
  for (size_t i = 0; i < c.hub.parties.size(); ++i) {
    auto& p = c.hub.parties[i];
    p.public_key =
        public_key_of(p.public_key, p.public_key_file, path, origins, fmt::format("hub.parties[{}]", i));
  }
  for (size_t i = 0; i < c.hub.operators.size(); ++i) {
    auto& o = c.hub.operators[i];
    o.public_key =
        public_key_of(o.public_key, o.public_key_file, path, origins, fmt::format("hub.operators[{}]", i));
  }
  if (!c.hub.ctl_key_file.empty()) c.hub.ctl_key_file = config::resolve_relative(path, c.hub.ctl_key_file);
}

bool ipv4_literal(const std::string& h) {
  int parts = 0;
  size_t i = 0;
  while (i <= h.size()) {
    size_t j = h.find('.', i);
    if (j == std::string::npos) j = h.size();
    const std::string part = h.substr(i, j - i);
    if (part.empty() || part.size() > 3 || part.find_first_not_of("0123456789") != std::string::npos ||
        std::stoi(part) > 255)
      return false;
    ++parts;
    i = j + 1;
  }
  return parts == 4;
}

void check_http(const HubSettings& hub, const config::Origins& origins) {
  HttpAddress a;
  try {
    a = parse_http_address(hub.http);
  } catch (const ConfigError& e) {
    throw ConfigError(fmt::format("{}: {}", origins.describe("hub.http"), e.what()));
  }
  if (!a.loopback && !hub.http_allow_remote) {
    throw ConfigError(fmt::format(
        "{}: '{}' is not a loopback address: the status page would be reachable from other hosts. Use "
        "127.0.0.1:PORT, or set hub.http_allow_remote: true to allow it",
        origins.describe("hub.http"), hub.http));
  }
}

}  // namespace

HttpAddress parse_http_address(const std::string& text) {
  const size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size()) {
    throw ConfigError(fmt::format("expected HOST:PORT such as 127.0.0.1:8080, found '{}'", text));
  }
  HttpAddress a;
  std::string host = text.substr(0, colon);
  const std::string port = text.substr(colon + 1);
  if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
      std::stoi(port) > 65535) {
    throw ConfigError(fmt::format("port '{}' in '{}' is not 0..65535", port, text));
  }
  a.port = std::stoi(port);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
    if (host.find_first_not_of("0123456789abcdefABCDEF:") != std::string::npos ||
        host.find(':') == std::string::npos)
      throw ConfigError(fmt::format("'{}' is not an IPv6 address", host));
    a.loopback = host == "::1";
  } else if (host == "localhost") {
    host = "127.0.0.1";
    a.loopback = true;
  } else if (ipv4_literal(host)) {
    a.loopback = host.rfind("127.", 0) == 0;
  } else {
    throw ConfigError(fmt::format(
        "host '{}' in '{}' must be an IPv4 address, [IPv6 address] or localhost (no host names: say which "
        "interface)",
        host, text));
  }
  a.host = host;
  return a;
}

config::Schema<HubConfig> hub_schema() {
  config::Schema<HubConfig> s;
  s.section("model", &HubConfig::model, model_schema())
      .section("train", &HubConfig::train, train_schema())
      .section("hub", &HubConfig::hub, hub_settings_schema())
      .include_key("preset");
  return s;
}

HubConfig load_hub_config(const std::string& path, const std::vector<std::string>& overrides,
                          bool read_keys) {
  HubConfig c;
  config::Origins& origins = c.origins;
  auto schema = hub_schema();
  schema.load_file(path, c, &origins);
  for (const auto& o : overrides) schema.apply_override(o, c, &origins);
  validate(c.model, origins);
  validate(c.train, origins);
  if (c.hub.parties.empty()) {
    throw ConfigError(origins.describe("hub.parties") +
                      ": no parties listed (add one entry per party: {id: a})");
  }
  std::set<std::string> ids;
  for (size_t i = 0; i < c.hub.parties.size(); ++i) {
    const auto& p = c.hub.parties[i];
    if (!ids.insert(p.id).second) {
      throw ConfigError(fmt::format("{}: party id '{}' listed twice",
                                    origins.describe(fmt::format("hub.parties[{}].id", i)), p.id));
    }
  }
  if (c.hub.schedule == "concurrent" && c.hub.steps_per_turn != 1) {
    throw ConfigError(
        fmt::format("{}: concurrent rounds take one step per party ({} set with hub.schedule: "
                    "concurrent)",
                    origins.describe("hub.steps_per_turn"), c.hub.steps_per_turn));
  }
  if (c.hub.party_timeout_ms <= c.hub.heartbeat_ms) {
    throw ConfigError(fmt::format("{}: party_timeout_ms ({}) must exceed heartbeat_ms ({})",
                                  origins.describe("hub.party_timeout_ms"), c.hub.party_timeout_ms,
                                  c.hub.heartbeat_ms));
  }
  if (!c.hub.http.empty()) check_http(c.hub, origins);
  if (read_keys) check_keys(c, path);
  return c;
}

}  // namespace pcmoe
