// Plain-mode endpoint rules (see plain_mode.h).
#include "common/plain_mode.h"

#include <fmt/format.h>

namespace pcmoe::plain_mode {

bool is_local_endpoint(std::string_view e) {
  if (e.rfind("ipc://", 0) == 0 || e.rfind("inproc://", 0) == 0) return true;
  if (e.rfind("tcp://", 0) != 0) return false;
  e.remove_prefix(6);
  const size_t colon = e.rfind(':');
  const std::string_view host = colon == std::string_view::npos ? e : e.substr(0, colon);
  if (host == "localhost" || host == "[::1]") return true;
  // 127.0.0.0/8: "127." then digits and dots only (a name such as 127.example.org is not local).
  return host.rfind("127.", 0) == 0 && host.find_first_not_of("0123456789.") == std::string_view::npos;
}

bool refuses(std::string_view e) {
  if (is_local_endpoint(e)) return false;
  if (e.rfind("tcp://", 0) != 0) return e.find("://") != std::string_view::npos;
  const size_t colon = e.rfind(':');
  return colon > 6 && colon + 1 < e.size();  // host and port present
}

std::string not_local_error(const std::string& where, const std::string& endpoint,
                            const std::string& insecure_key) {
  return fmt::format(
      "{}: '{}' is not a loopback endpoint, and {} is true: plain mode has no authentication and no "
      "encryption, so it is limited to this host (tcp://127.0.0.1:PORT, ipc://). Across machines use "
      "CURVE: give every participant a key pair (pcmoe-ctl keygen) and drop {}",
      where, endpoint, insecure_key, insecure_key);
}

}  // namespace pcmoe::plain_mode
