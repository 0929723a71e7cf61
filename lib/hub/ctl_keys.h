// Owns pcmoe-ctl's keys: `keygen` — one key pair (--out FILE [--public-out FILE]) or the key pairs
// of a whole federation in one folder (--dir DIR --names hub,operator,party-a,...: DIR/NAME.key,
// 0600, and DIR/NAME.pub; existing pairs are kept, so it can run before every start) — and which
// key pair pcmoe-ctl authenticates with: an operator's (--key FILE, else the operator key file the
// hub names: hub.ctl_key_file, ctl.json), never the hub's own.
// Single-threaded; writes to the given stream only. Bad usage and key files throw ConfigError.
#pragma once

#include <cstdio>
#include <optional>
#include <string>

#include "common/cli.h"
#include "net/curve.h"

namespace pcmoe::hub {

// `pcmoe-ctl keygen ...`; returns the exit code.
int run_keygen(const cli::Args& args, std::FILE* out);

// The operator key pair pcmoe-ctl uses: --key FILE, else `fallback_file` ("" = none).
std::optional<net::CurveKeyPair> operator_key_pair(const cli::Args& args, const std::string& fallback_file);

// --hub-key VALUE: a Z85 public key, or a file holding one (pcmoe-ctl keygen --public-out).
std::string hub_key_value(const std::string& value);

}  // namespace pcmoe::hub
