// Owns the default ZeroMQ context (see context.h).
#include "net/context.h"

#include <algorithm>
#include <cstdlib>
#include <string>
#include <thread>

#include "common/log.h"

namespace pcmoe::net {

int io_threads() {
  if (const char* env = std::getenv("PCMOE_ZMQ_IO_THREADS")) {
    try {
      return std::clamp(std::stoi(env), 1, 16);
    } catch (...) {
      PCMOE_WARN("net.bad_io_threads").kv("PCMOE_ZMQ_IO_THREADS", std::string(env)).kv("using", "default");
    }
  }
  return std::clamp(static_cast<int>(std::thread::hardware_concurrency() / 4), 1, 4);
}

zmq::context_t& default_context() {
  static zmq::context_t* ctx = new zmq::context_t(io_threads());  // intentionally leaked (see context.h)
  return *ctx;
}

}  // namespace pcmoe::net
