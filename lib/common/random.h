// Owns unpredictable numbers from the operating system (getrandom): private seeds, row
// permutation seeds, session tokens. Thread-safe. Throws pcmoe::Error if the OS cannot give any.
#pragma once

#include <cstdint>

namespace pcmoe {

// A non-zero 64-bit value from the OS's random source.
uint64_t os_random_u64();

}  // namespace pcmoe
