// Schema and validation of the hub's configuration (see hub_config.h).
#include "common/hub_config.h"

#include <fmt/format.h>

#include <set>

namespace pcmoe {

static config::Schema<HubPartyEntry> hub_party_schema() {
  config::Schema<HubPartyEntry> s;
  s.field("id", &HubPartyEntry::id, "party id (must match party.id in that party's config)",
          config::non_empty())
      .field("public_key", &HubPartyEntry::public_key,
             "the party's CURVE public key (Z85); required when the hub has a secret_key_file");
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
             "global steps between expert-pool snapshots; 0 = at the end and on request",
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
             "the hub's CURVE key pair file (pcmoe-ctl keygen); \"\" = CURVE off")
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

HubConfig load_hub_config(const std::string& path, const std::vector<std::string>& overrides) {
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
    if (!c.hub.secret_key_file.empty() && p.public_key.size() != 40) {
      throw ConfigError(
          fmt::format("{}: CURVE is on (hub.secret_key_file is set) but party '{}' has {} public key "
                      "(expected 40 Z85 characters from `pcmoe-ctl keygen`)",
                      origins.describe(fmt::format("hub.parties[{}].public_key", i)), p.id,
                      p.public_key.empty() ? "no" : "a malformed"));
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
  if (!c.hub.secret_key_file.empty())
    c.hub.secret_key_file = config::resolve_relative(path, c.hub.secret_key_file);
  return c;
}

}  // namespace pcmoe
