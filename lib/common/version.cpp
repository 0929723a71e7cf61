// The build's version strings (see version.h), from the header cmake generates at configure time.
#include "common/version.h"

#include <fmt/format.h>

#include "common/version_info.h"

namespace pcmoe::version {

std::string project() { return PCMOE_VERSION_STRING; }
std::string git_describe() { return PCMOE_GIT_DESCRIBE; }
int protocol_major() { return PCMOE_PROTOCOL_MAJOR; }
int protocol_minor() { return PCMOE_PROTOCOL_MINOR; }

std::string line(const std::string& program) {
  return fmt::format("{} {} (git {}, protocol {}.{})", program, project(), git_describe(), protocol_major(),
                     protocol_minor());
}

}  // namespace pcmoe::version
