// Owns what `--version` says: the project version, the `git describe` of the sources it was built
// from (recorded at configure time; "unknown" without a git checkout) and the wire protocol
// version (proto/PROTOCOL.md), e.g. "pcmoe-hub 0.1.0 (git 11d269f, protocol 1.0)".
// Thread-safe (constants).
#pragma once

#include <string>

namespace pcmoe::version {

std::string project();       // "0.1.0"
std::string git_describe();  // "v0.1.0-3-g11d269f-dirty", "11d269f" or "unknown"
int protocol_major();
int protocol_minor();
// One line, without a newline: "<program> <project> (git <describe>, protocol <major>.<minor>)".
std::string line(const std::string& program);

}  // namespace pcmoe::version
