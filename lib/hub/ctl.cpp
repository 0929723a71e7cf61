// pcmoe-ctl's logic (see ctl.h).
#include "hub/ctl.h"

#include <fmt/format.h>
#include <signal.h>
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <chrono>

#include "common/error.h"
#include "common/fs.h"
#include "common/hub_config.h"
#include "common/json.h"
#include "hub/ctl_keys.h"
#include "hub/ctl_watch.h"
#include "hub/status_format.h"
#include "net/endpoint.h"
#include "net/rpc.h"

namespace pcmoe::hub {
namespace {

const char* kCommands = "status, watch, wait, pause, resume, checkpoint, snapshot, stop, keygen";

int parse_positive(const std::string& flag, const std::string& text, long max) {
  try {
    size_t used = 0;
    long v = std::stol(text, &used);
    if (used == text.size() && v > 0 && v <= max) return static_cast<int>(v);
  } catch (const std::exception&) {
  }
  throw ConfigError(fmt::format("pcmoe-ctl: --{} expects an integer in 1..{}, found '{}'", flag, max, text));
}

CtlTarget checked(CtlTarget t) {
  if (!t.server_key.empty() && !t.client_keys) {
    throw ConfigError(fmt::format(
        "pcmoe-ctl: the hub at {} uses CURVE: pcmoe-ctl needs an operator key pair that the hub lists "
        "(hub.operators or hub.ctl_key_file): --key FILE",
        t.endpoint));
  }
  return t;
}

CtlTarget target_of(const cli::Args& args) {
  CtlTarget t;
  if (args.has("timeout-ms")) t.timeout_ms = parse_positive("timeout-ms", args.get("timeout-ms"), 3600000);
  if (args.has("run")) {
    if (!args.config.empty() || args.has("endpoint"))
      throw ConfigError("pcmoe-ctl: --run DIR names the hub already: drop --config / --endpoint");
    std::string operator_file;
    CtlTarget r = target_from_run_dir(args.get("run"), &operator_file);
    r.timeout_ms = t.timeout_ms;
    if (!r.server_key.empty()) r.client_keys = operator_key_pair(args, operator_file);
    return checked(r);
  }
  if (args.config.empty()) {
    if (!args.sets.empty()) throw ConfigError("pcmoe-ctl: --set needs --config");
    t.endpoint = args.get("endpoint");
    if (args.has("hub-key")) {  // --endpoint with CURVE: the hub's public key and an operator key pair
      t.server_key = hub_key_value(args.get("hub-key"));
      t.client_keys = operator_key_pair(args, "");
    }
    return checked(t);
  }
  HubConfig cfg = load_hub_config(args.config, args.sets);
  t.endpoint = args.has("endpoint") ? args.get("endpoint") : connect_endpoint(cfg.hub.bind);
  if (cfg.curve()) {
    t.server_key = net::read_public_key_file(cfg.hub.secret_key_file);
    t.client_keys = operator_key_pair(args, cfg.hub.ctl_key_file);
  }
  return checked(t);
}

int show_reply(const std::string& command, const proto::Message& reply, bool json, std::FILE* out,
               std::FILE* err) {
  if (const auto* s = std::get_if<proto::Status>(&reply); s && command == "status") {
    std::fputs((json ? status_json(*s) + "\n" : format_status(*s)).c_str(), out);
    return kExitOk;
  }
  if (const auto* a = std::get_if<proto::ControlAck>(&reply); a && command != "status") {
    std::fputs((json ? ack_json(command, *a) + "\n" : format_ack(command, *a)).c_str(), out);
    return a->ok ? kExitOk : kExitFatal;
  }
  if (const auto* e = std::get_if<proto::ErrorMsg>(&reply)) {
    std::fprintf(err, "pcmoe-ctl: the hub refused '%s': %s: %s\n", command.c_str(),
                 std::string(proto::error_code_name(static_cast<proto::ErrorCode>(e->code))).c_str(),
                 e->reason.c_str());
    return kExitTransport;
  }
  std::fprintf(err, "pcmoe-ctl: unexpected reply to '%s': %s\n", command.c_str(),
               std::string(proto::msg_type_name(proto::type_of(reply))).c_str());
  return kExitTransport;
}

}  // namespace

cli::Spec ctl_spec() {
  cli::Spec s;
  s.program = "pcmoe-ctl";
  s.summary = fmt::format(
      "Talk to a running pcmoe-hub. Commands: {}.\n"
      "  status      parties, step, turn, losses, memory, traffic, global expert load\n"
      "  watch       a live progress line (step, losses, tok/s, ETA) until the run ends\n"
      "  wait        until the hub answers at global step >= --step (default 1); --timeout-ms: the\n"
      "              deadline (default 120000); with --run it may start before the hub\n"
      "  pause       no new turns (the current one finishes); resume: continue\n"
      "  checkpoint  every live party checkpoints; the hub writes hub_state.json\n"
      "  snapshot    collect the expert pool now (<out_dir>/pool.pcmoe)\n"
      "  stop        finish early: final snapshot, parties evaluate, export and leave\n"
      "  keygen      write a CURVE key pair file (--out FILE, 0600; --public-out FILE) and print the public "
      "key,\n"
      "              or a federation's pairs: --dir DIR --names hub,operator,party-a,... (DIR/NAME.key, "
      ".pub;\n"
      "              existing pairs are kept)\n"
      "Hub commands need --run DIR (a run folder: the ctl.json its hub wrote), --config (the hub's YAML:\n"
      "endpoint and keys) or --endpoint (with --hub-key for CURVE). With CURVE pcmoe-ctl authenticates with\n"
      "an operator key pair the hub lists (hub.operators, hub.ctl_key_file): --key FILE, else "
      "hub.ctl_key_file.\n"
      "Exit codes: 0 ok, 1 refused by the hub, 2 usage or configuration, 3 no answer or error reply.",
      kCommands);
  s.needs_config = false;
  s.positional = {"command"};
  s.flags = {
      {"run", true, false, "run folder: reach the hub through DIR/ctl.json or DIR/hub/ctl.json"},
      {"json", false, false, "print the reply as one JSON object"},
      {"endpoint", true, false, "hub endpoint (default: hub.bind, wildcard host -> 127.0.0.1)"},
      {"timeout-ms", true, false, "how long to wait for the hub's answer (default 5000)"},
      {"key", true, false, "the operator key pair file to authenticate with (CURVE)"},
      {"hub-key", true, false, "with --endpoint: the hub's public key (Z85) or its .pub file"},
      {"out", true, false, "keygen: key pair file to write"},
      {"dir", true, false, "keygen: folder for a set of key pairs (with --names)"},
      {"names", true, false, "keygen --dir: comma-separated names, e.g. hub,operator,party-a"},
      {"public-out", true, false, "keygen: also write the public key alone to this file"},
      {"interval-ms", true, false, "watch: between updates (default 2000 on a terminal, else 10000)"},
      {"width", true, false, "watch: columns to fit (default: the terminal's, $COLUMNS, 80)"},
      {"step", true, false, "wait: the global step to wait for (default 1; 0: until the hub answers)"}};
  return s;
}

CtlTarget target_from_run_dir(const std::string& dir, std::string* operator_key_file) {
  std::string path = fs::join(dir, "ctl.json");
  if (!fs::exists(path)) path = fs::join(fs::join(dir, "hub"), "ctl.json");
  if (!fs::exists(path)) {
    throw ConfigError(fmt::format(
        "pcmoe-ctl --run {}: neither {}/ctl.json nor {}/hub/ctl.json exists (a running pcmoe-hub writes "
        "ctl.json into its hub.out_dir; is this a run folder, and has its hub started?)",
        dir, dir, dir));
  }
  CtlTarget t;
  std::string key_file;
  int64_t pid = 0;
  try {
    YAML::Node j = YAML::Load(fs::read_file(path));  // JSON is YAML
    t.endpoint = j["endpoint"].as<std::string>();
    t.server_key = j["hub_public_key"].as<std::string>("");
    key_file = j["operator_key_file"].as<std::string>("");
    pid = j["pid"].as<int64_t>();
  } catch (const YAML::Exception& e) {
    throw ConfigError(fmt::format("{}: not the ctl.json a pcmoe-hub writes: {}", path, e.what()));
  }
  net::parse_endpoint(t.endpoint, net::EndpointUse::connect);  // throws ConfigError naming it
  if (!t.server_key.empty() && !net::is_z85_key(t.server_key)) {
    throw ConfigError(fmt::format("{}: hub_public_key is not a Z85 key", path));
  }
  if (operator_key_file != nullptr) *operator_key_file = key_file;
  if (pid > 0 && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) {
    t.stale_note = fmt::format("{} was written by hub pid {}, which is not running on this host", path, pid);
  }
  return t;
}

std::string connect_endpoint(const std::string& bind) {
  net::Endpoint e = net::parse_endpoint(bind, net::EndpointUse::bind);
  if (e.transport == net::Transport::tcp) {
    if (e.ephemeral_port()) {
      throw ConfigError(
          fmt::format("hub.bind '{}' has an ephemeral port: pass --endpoint with the port the hub "
                      "logged (hub.started)",
                      bind));
    }
    if (e.wildcard_host()) e.host = e.host.rfind('[', 0) == 0 ? "[::1]" : "127.0.0.1";
  } else if (e.transport == net::Transport::ipc && e.path == "*") {
    throw ConfigError(fmt::format("hub.bind '{}' has no fixed path: pass --endpoint", bind));
  }
  return net::parse_endpoint(e.str(), net::EndpointUse::connect).str();
}

std::optional<proto::Message> ctl_call(zmq::context_t& ctx, const CtlTarget& target,
                                       const proto::Message& request) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(target.timeout_ms);
  net::ClientOptions o;
  o.endpoint = target.endpoint;
  if (!target.server_key.empty()) {
    o.curve = target.client_keys;
    o.server_public_key = target.server_key;
  }
  net::Client client(ctx, o);
  if (!net::send_message(client, request, target.timeout_ms)) return std::nullopt;
  auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  return net::recv_message(client, std::max<int>(0, static_cast<int>(left.count())), proto::Limits{});
}

int run_ctl(const cli::Args& args, std::FILE* out, std::FILE* err) {
  if (args.print_config) {
    if (args.config.empty()) throw ConfigError("pcmoe-ctl: --print-config needs --config FILE");
    std::fputs(hub_schema().to_yaml(load_hub_config(args.config, args.sets)).c_str(), out);
    return kExitOk;
  }
  if (args.positional.empty()) {
    throw ConfigError(fmt::format("pcmoe-ctl: missing command ({})\n{}", kCommands, cli::usage(ctl_spec())));
  }
  const std::string command = args.positional[0];
  if (command == "keygen") return run_keygen(args, out);
  const bool known = command == "status" || command == "watch" || command == "wait" || command == "pause" ||
                     command == "resume" || command == "checkpoint" || command == "snapshot" ||
                     command == "stop";
  if (!known) {
    throw ConfigError(fmt::format("pcmoe-ctl: unknown command '{}' (expected one of: {})\n{}", command,
                                  kCommands, cli::usage(ctl_spec())));
  }
  if (args.config.empty() && !args.has("endpoint") && !args.has("run")) {
    throw ConfigError(fmt::format(
        "pcmoe-ctl {}: needs --run DIR (a run folder), --config FILE (the hub's config) or --endpoint E\n{}",
        command, cli::usage(ctl_spec())));
  }
  if (command == "wait") {
    const std::string step_text = args.get("step", "1");
    const int64_t step = step_text == "0" ? 0 : parse_positive("step", step_text, 2000000000);
    const int timeout_ms =
        args.has("timeout-ms") ? parse_positive("timeout-ms", args.get("timeout-ms"), 3600000) : 120000;
    return run_wait([&] { return target_of(args); }, step, timeout_ms, out, err);
  }
  CtlTarget target = target_of(args);
  if (command == "watch") {
    WatchOptions w;
    if (args.has("interval-ms"))
      w.interval_ms = parse_positive("interval-ms", args.get("interval-ms"), 3600000);
    if (args.has("width")) w.width = parse_positive("width", args.get("width"), 10000);
    return run_watch(target, w, out, err);
  }
  proto::Message request = command == "status" ? proto::Message(proto::StatusRequest{true})
                                               : proto::Message(proto::Control{command});
  zmq::context_t ctx;
  auto reply = ctl_call(ctx, target, request);
  if (!reply) {
    std::fprintf(
        err, "pcmoe-ctl: no answer from the hub at %s within %d ms (%s)\n", target.endpoint.c_str(),
        target.timeout_ms,
        target.stale_note.empty() ? "is pcmoe-hub running? right endpoint/keys?" : target.stale_note.c_str());
    return kExitTransport;
  }
  return show_reply(command, *reply, args.has("json"), out, err);
}

}  // namespace pcmoe::hub
