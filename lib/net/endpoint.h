// Owns ZeroMQ endpoint strings: validation with clear ConfigError messages that name the bad
// endpoint, the actual endpoint after a bind (ZMQ_LAST_ENDPOINT) and the connectable form of a
// wildcard bind to advertise to peers. Accepted forms:
//   tcp://host:port       host: a name, an IPv4 address or [IPv6]; port 1..65535
//   tcp://*:port          bind only (all interfaces); port "*" or "0": ephemeral, bind only
//   ipc://path            a file path (<= 107 bytes) or "@name" (abstract); "ipc://*" bind only
//   inproc://name         same process only
// Stateless functions; thread-safe except last_endpoint (the socket's owner thread).
#pragma once

#include <string>
#include <string_view>
#include <zmq.hpp>

namespace pcmoe::net {

enum class Transport { tcp, ipc, inproc };
enum class EndpointUse { bind, connect };

struct Endpoint {
  Transport transport = Transport::tcp;
  std::string host;  // tcp only; IPv6 kept with its brackets
  std::string port;  // tcp only; "*" or "0" for ephemeral (bind)
  std::string path;  // ipc path or inproc name

  std::string str() const;
  bool wildcard_host() const;   // "*", "0.0.0.0", "[::]"
  bool ephemeral_port() const;  // "*" or "0"
};

// Throws ConfigError("bad endpoint '<s>': <why>") when `s` is not valid for `use`.
Endpoint parse_endpoint(std::string_view s, EndpointUse use);

// The endpoint a socket is bound to (after an ephemeral bind: with the real port).
std::string last_endpoint(zmq::socket_t& socket);

// What peers should connect to for a socket bound at `bound` (a last_endpoint()):
// with `advertise_host` set, its host is replaced by it; else a wildcard host becomes this
// machine's host name. ipc and inproc endpoints are returned as they are.
std::string advertised_endpoint(const std::string& bound, const std::string& advertise_host = "");

}  // namespace pcmoe::net
