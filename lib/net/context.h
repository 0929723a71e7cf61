// Owns the process-wide ZeroMQ context used when a caller does not pass one explicitly.
// Prefer passing a zmq::context_t& down from main(); default_context() is the convenience.
// The default context is created on first use and never destroyed: a static destructor that
// terminates a context while another static still holds a socket would hang the process at exit.
// Thread-safe (zmq contexts are; the first call is a C++ magic static).
// It runs io_threads() I/O threads: each socket is served by one of them, so a party that pulls
// activations from several hosts at once copies them in parallel instead of through one thread.
#pragma once

#include <zmq.hpp>

namespace pcmoe::net {

zmq::context_t& default_context();

// I/O threads for the default context: a quarter of the hardware threads, 1 to 4
// (env PCMOE_ZMQ_IO_THREADS overrides, 1 to 16).
int io_threads();

}  // namespace pcmoe::net
