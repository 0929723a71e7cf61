// Owns the pcmoe-party daemon's life: start-up as a list of steps (private seed, expert service
// bound, hub connection, hello -> welcome, placement, trainer, checkpoint restore, peers), then
// the main loop on the hub's messages (turns, directory, global expert load, checkpoint and
// snapshot requests, stop), heartbeats, and the end (final evaluation, checkpoint, pool export,
// bye, release). Threads: the main thread owns the hub DEALER and the peer DEALERs and trains; the
// expert-service thread owns the ROUTER (expert_server.h). They share only the ExpertHost (which
// locks the expert shard).
#pragma once

#include <string>

#include "common/party_config.h"

namespace pcmoe::party {

// Runs the daemon until training ends, a signal, or a fatal error. Returns the exit code
// (0 ok, 2 config, 3 hub/peer failure); throws pcmoe::Error subclasses for fatal errors.
int run_party(const PartyConfig& cfg);

}  // namespace pcmoe::party
