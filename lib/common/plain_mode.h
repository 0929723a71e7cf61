// Owns the rules of plain mode (`insecure: true`: no CURVE, so no authentication and no
// encryption), which is for development on one host: every endpoint a participant binds,
// advertises or connects to must then be local — tcp:// on a loopback address (127.0.0.0/8,
// localhost, [::1]), ipc:// or inproc://. Stateless; thread-safe.
#pragma once

#include <string>
#include <string_view>

namespace pcmoe::plain_mode {

// True for an endpoint that only this host can reach (see above). A wildcard host (tcp://*:5555,
// 0.0.0.0) or any other address is not local.
bool is_local_endpoint(std::string_view endpoint);
// Whether plain mode refuses `endpoint`: a well-formed tcp://HOST:PORT that is not local, or a
// transport other than tcp, ipc and inproc. (A malformed endpoint is left to the endpoint parser,
// whose message says what is wrong with it.)
bool refuses(std::string_view endpoint);

// The ConfigError text for a non-local endpoint in plain mode; `where` names the key
// ("configs/hub.yaml:6: key 'hub.bind'"), `insecure_key` the switch ("hub.insecure").
std::string not_local_error(const std::string& where, const std::string& endpoint,
                            const std::string& insecure_key);

}  // namespace pcmoe::plain_mode
