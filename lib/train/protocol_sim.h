// Owns pcmoe-central's mode protocol: the PC-MoE protocol simulated in one process — one private
// backbone per party (each from that party's seed, trained only on that party's data), one
// shared expert pool, the hub's randomised round-robin turn order — with exactly the arithmetic
// of a real federation (same initialisation, data order, learning-rate schedule, clipping over
// the backbone plus the experts that received gradients, per-expert optimizer steps), so a
// federation can be checked against it step for step.
#pragma once

#include "common/run_config.h"
#include "train/central.h"

namespace pcmoe::train {

TrainSummary run_protocol_sim(const CentralConfig& cfg);

}  // namespace pcmoe::train
