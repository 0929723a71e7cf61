// Owns the process-wide ZeroMQ context used when a caller does not pass one explicitly.
// Prefer passing a zmq::context_t& down from main(); default_context() is the convenience.
// The default context is created on first use and never destroyed: a static destructor that
// terminates a context while another static still holds a socket would hang the process at exit.
// Thread-safe (zmq contexts are; the first call is a C++ magic static).
#pragma once

#include <zmq.hpp>

namespace pcmoe::net {

zmq::context_t& default_context();

}  // namespace pcmoe::net
