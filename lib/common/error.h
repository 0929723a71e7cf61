// Owns pcmoe's error types, the PCMOE_CHECK macro and the process exit codes.
// Inside lib/, failures are thrown as types derived from pcmoe::Error; boundaries (apps, the
// request loops of the daemons) catch them, log one line and map them to an exit code or an
// error reply. Expected outcomes (timeouts, would-block) are values, never exceptions.
#pragma once

#include <fmt/format.h>

#include <stdexcept>
#include <string>

namespace pcmoe {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// A configuration file, CLI flag or override is wrong. Exit code 2.
class ConfigError : public Error {
 public:
  using Error::Error;
};

// A peer sent bad data (malformed, wrong version, wrong shape, NaN ...). Answered with an error reply.
class ProtocolError : public Error {
 public:
  using Error::Error;
};

// A link failed (socket error, peer gone, timeout that ends a step). Reset the link. Exit code 3.
class TransportError : public Error {
 public:
  using Error::Error;
};

// Tensor/model failure (shape mismatch, libtorch error rethrown with context, out of memory).
// lib/model turns libtorch's errors into this (model::rethrow_torch); out_of_memory() says
// whether the device ran out of memory, so a host can answer out_of_memory instead of internal.
class ModelError : public Error {
 public:
  explicit ModelError(const std::string& what, bool out_of_memory = false)
      : Error(what), out_of_memory_(out_of_memory) {}
  bool out_of_memory() const { return out_of_memory_; }

 private:
  bool out_of_memory_ = false;
};

// A data file is missing, unreadable or malformed.
class DataError : public Error {
 public:
  using Error::Error;
};

// Process exit codes (README: Operations).
enum ExitCode : int {
  kExitOk = 0,
  kExitFatal = 1,
  kExitUsage = 2,      // bad CLI flag or configuration
  kExitTransport = 3,  // peer or transport failure
};

}  // namespace pcmoe

// PCMOE_CHECK(cond, "format {}", args...): throws pcmoe::Error with the message and file:line.
// PCMOE_CHECK_T(Type, cond, ...): the same with a specific error type.
#define PCMOE_CHECK_T(Type, cond, ...)                                                    \
  do {                                                                                    \
    if (!(cond)) {                                                                        \
      throw Type(fmt::format(__VA_ARGS__) +                                               \
                 fmt::format(" [{}:{}]", ::pcmoe::detail::basename(__FILE__), __LINE__)); \
    }                                                                                     \
  } while (0)
#define PCMOE_CHECK(cond, ...) PCMOE_CHECK_T(::pcmoe::Error, cond, __VA_ARGS__)

namespace pcmoe::detail {
constexpr const char* basename(const char* path) {
  const char* base = path;
  for (const char* p = path; *p; ++p) {
    if (*p == '/') base = p + 1;
  }
  return base;
}
}  // namespace pcmoe::detail
