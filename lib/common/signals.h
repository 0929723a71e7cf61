// Owns process signal handling: SIGINT/SIGTERM set a stop flag that loops poll (they never
// exit the process from the handler); SIGPIPE and SIGXFSZ are ignored (a write past a file-size
// limit fails with EFBIG instead of ending the process). Thread-safe (an atomic).
#pragma once

namespace pcmoe::signals {

// Installs the handlers. Call once from main() before starting threads.
void install();
// True once SIGINT or SIGTERM arrived (or request_stop() was called).
bool stop_requested();
// The signal that asked to stop (0 if none / requested programmatically).
int stop_signal();
void request_stop();
// Clears the flag (tests).
void reset();

}  // namespace pcmoe::signals
