// Owns the pcmoe-party daemon's life: start-up as a list of steps (private seed and start log,
// CURVE keys, expert service bound, hub link, hello -> welcome, trainer and memory limit,
// checkpoint restore, directory, serving), then the main loop: at each step boundary it feeds the
// hub's messages and the time to the PartySession (party_session.h) and carries out what the
// session asks (steps of a turn, directory, expert load, checkpoints, snapshots, the end, exit).
// Threads: the main thread owns the trainer, the peer DEALERs (PeerLinks) and the session; the hub
// link's thread owns the hub DEALER and heartbeats (hub_link.h); the expert-service thread owns
// the ROUTER (expert_server.h). They share only the ExpertHost (which locks the expert shard) and
// the hub link's queues.
#pragma once

#include <string>

#include "common/party_config.h"

namespace pcmoe::party {

// Runs the daemon until training ends, a signal, or a fatal error. Returns the exit code
// (0 ok, 2 config, 3 hub/peer failure); throws pcmoe::Error subclasses for fatal errors.
int run_party(const PartyConfig& cfg);

}  // namespace pcmoe::party
