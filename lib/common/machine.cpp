// The machine's resources (see machine.h).
#include "common/machine.h"

#include <unistd.h>

namespace pcmoe::machine {

uint64_t physical_memory_bytes() {
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
  return pages > 0 && page > 0 ? static_cast<uint64_t>(pages) * static_cast<uint64_t>(page) : 0;
}

}  // namespace pcmoe::machine
