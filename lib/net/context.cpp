// Owns the default ZeroMQ context (see context.h).
#include "net/context.h"

namespace pcmoe::net {

zmq::context_t& default_context() {
  static zmq::context_t* ctx = new zmq::context_t(1);  // intentionally leaked (see context.h)
  return *ctx;
}

}  // namespace pcmoe::net
