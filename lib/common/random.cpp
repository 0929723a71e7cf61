// Numbers from the OS's random source (see random.h).
#include "common/random.h"

#include <sys/random.h>

#include "common/error.h"

namespace pcmoe {

uint64_t os_random_u64() {
  uint64_t v = 0;
  while (v == 0) {
    if (::getrandom(&v, sizeof v, 0) != static_cast<ssize_t>(sizeof v)) throw Error("getrandom failed");
  }
  return v;
}

}  // namespace pcmoe
