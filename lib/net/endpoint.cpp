// Owns endpoint parsing and advertising (see endpoint.h).
#include "net/endpoint.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cctype>

#include "common/error.h"

namespace pcmoe::net {
namespace {

constexpr size_t kMaxIpcPath = 107;  // sizeof(sockaddr_un::sun_path) - 1

[[noreturn]] void bad(std::string_view s, const std::string& why) {
  throw ConfigError(fmt::format("bad endpoint '{}': {}", s, why));
}

bool valid_host_name(std::string_view h) {
  if (h.empty() || h.size() > 253) return false;
  for (char c : h) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '_') return false;
  }
  return h.front() != '-' && h.front() != '.';
}

bool valid_ipv6(std::string_view h) {  // "[...]": hex digits, ':' and '.' (mapped IPv4)
  if (h.size() < 4 || h.front() != '[' || h.back() != ']') return false;
  for (char c : h.substr(1, h.size() - 2)) {
    if (!std::isxdigit(static_cast<unsigned char>(c)) && c != ':' && c != '.') return false;
  }
  return true;
}

void parse_tcp(std::string_view s, std::string_view rest, EndpointUse use, Endpoint& e) {
  size_t colon = rest.rfind(':');
  if (colon == std::string_view::npos) bad(s, "expected tcp://host:port");
  e.host = std::string(rest.substr(0, colon));
  e.port = std::string(rest.substr(colon + 1));
  if (e.host == "*") {
    if (use == EndpointUse::connect) bad(s, "cannot connect to '*'; name a host");
  } else if (!(e.host.front() == '[' ? valid_ipv6(e.host) : valid_host_name(e.host))) {
    bad(s, fmt::format("invalid host '{}'", e.host));
  }
  if (e.ephemeral_port()) {
    if (use == EndpointUse::connect) bad(s, "cannot connect to an ephemeral port; name the port");
    return;
  }
  bool digits = !e.port.empty() && e.port.size() <= 5;
  for (char c : e.port) digits = digits && c >= '0' && c <= '9';
  if (!digits || std::stoi(e.port) < 1 || std::stoi(e.port) > 65535) {
    bad(s, fmt::format("invalid port '{}' (1..65535{})", e.port,
                       use == EndpointUse::bind ? ", or * for any" : ""));
  }
}

}  // namespace

std::string Endpoint::str() const {
  switch (transport) {
    case Transport::tcp:
      return fmt::format("tcp://{}:{}", host, port);
    case Transport::ipc:
      return "ipc://" + path;
    case Transport::inproc:
      return "inproc://" + path;
  }
  return "";
}

bool Endpoint::wildcard_host() const {
  return transport == Transport::tcp && (host == "*" || host == "0.0.0.0" || host == "[::]");
}

bool Endpoint::ephemeral_port() const { return port == "*" || port == "0"; }

Endpoint parse_endpoint(std::string_view s, EndpointUse use) {
  Endpoint e;
  size_t sep = s.find("://");
  if (sep == std::string_view::npos) bad(s, "expected tcp://, ipc:// or inproc://");
  std::string_view scheme = s.substr(0, sep), rest = s.substr(sep + 3);
  if (scheme == "tcp") {
    e.transport = Transport::tcp;
    parse_tcp(s, rest, use, e);
    return e;
  }
  e.path = std::string(rest);
  if (scheme == "ipc") {
    e.transport = Transport::ipc;
    if (e.path.empty()) bad(s, "empty ipc path");
    if (e.path == "*" && use == EndpointUse::connect) bad(s, "cannot connect to ipc://*");
    if (e.path.size() > kMaxIpcPath) bad(s, fmt::format("ipc path longer than {} bytes", kMaxIpcPath));
    return e;
  }
  if (scheme == "inproc") {
    e.transport = Transport::inproc;
    if (e.path.empty()) bad(s, "empty inproc name");
    return e;
  }
  bad(s, fmt::format("unknown transport '{}' (tcp, ipc or inproc)", scheme));
}

std::string last_endpoint(zmq::socket_t& socket) { return socket.get(zmq::sockopt::last_endpoint); }

std::string advertised_endpoint(const std::string& bound, const std::string& advertise_host) {
  Endpoint e = parse_endpoint(bound, EndpointUse::bind);
  if (e.transport != Transport::tcp) return bound;
  if (!advertise_host.empty()) {
    bool v6 = advertise_host.find(':') != std::string::npos && advertise_host.front() != '[';
    e.host = v6 ? "[" + advertise_host + "]" : advertise_host;
  } else if (e.wildcard_host()) {
    char name[256] = {0};
    if (::gethostname(name, sizeof(name) - 1) != 0 || name[0] == '\0') {
      throw ConfigError(
          fmt::format("endpoint '{}' is bound to all interfaces and the host name is unknown: "
                      "set an advertise host",
                      bound));
    }
    e.host = name;
  }
  return parse_endpoint(e.str(), EndpointUse::connect).str();
}

}  // namespace pcmoe::net
