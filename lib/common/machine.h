// Owns what pcmoe asks of the machine it runs on: its physical memory (the "device" of a CPU
// trainer, and the hub's pool). Thread-safe; never throws (0 when unknown).
#pragma once

#include <cstdint>

namespace pcmoe::machine {

// Bytes of physical memory (sysconf), 0 if unknown.
uint64_t physical_memory_bytes();

}  // namespace pcmoe::machine
