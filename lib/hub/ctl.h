// Owns pcmoe-ctl, the operator's client of the hub: its command line (status, watch, pause,
// resume, checkpoint, snapshot, stop, keygen), finding the hub (--run DIR: the ctl.json the hub
// wrote in its out_dir; --config: hub.bind with a wildcard host made 127.0.0.1; or --endpoint),
// CURVE with an operator key pair (ctl_keys.h), one request and one reply with a
// deadline, and the exit codes: 0 ok, 1 refused by the hub (ControlAck ok=false), 2 usage/config,
// 3 no answer or an error reply. `watch` is ctl_watch.h.
// Single-threaded; writes to the given streams only.
#pragma once

#include <zmq.hpp>

#include <cstdio>
#include <optional>
#include <string>

#include "common/cli.h"
#include "net/curve.h"
#include "proto/messages.h"

namespace pcmoe::hub {

cli::Spec ctl_spec();

// The endpoint to connect to for a hub bound at `bind` (tcp://*:5555 -> tcp://127.0.0.1:5555).
// Throws ConfigError for an endpoint one cannot connect to (ephemeral port, ipc://*).
std::string connect_endpoint(const std::string& bind);

struct CtlTarget {
  std::string endpoint;
  std::optional<net::CurveKeyPair> client_keys;  // CURVE: the operator key pair pcmoe-ctl speaks with
  std::string server_key;                        // CURVE: the hub's public key; "" = no CURVE
  int timeout_ms = 5000;
  std::string stale_note;  // --run: why the hub may be gone (its pid is not running), for messages
};

// The hub of a run folder: DIR/ctl.json, else DIR/hub/ctl.json (scripts/run-federation.sh's
// layout), as the hub wrote it at start. Throws ConfigError naming the paths tried, or the file
// and what is wrong with it.
// `operator_key_file` (if given) gets the operator key pair file the hub named (hub.ctl_key_file).
CtlTarget target_from_run_dir(const std::string& dir, std::string* operator_key_file = nullptr);

// Sends `request` and waits for one reply within the timeout (nullopt: none). Throws
// proto::DecodeError for a reply that does not decode, TransportError for socket failures.
std::optional<proto::Message> ctl_call(zmq::context_t& ctx, const CtlTarget& target,
                                       const proto::Message& request);

// Runs a parsed command line; returns the exit code. Throws ConfigError for bad usage.
int run_ctl(const cli::Args& args, std::FILE* out, std::FILE* err);

}  // namespace pcmoe::hub
