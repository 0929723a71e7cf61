// Owns the boundary of every binary's main(): runs the body and maps exceptions to one clear
// line on stderr plus the documented exit code (0 ok, 1 fatal, 2 usage/config, 3 peer/transport);
// cli::VersionRequested (--version) prints the version line on stdout and exits 0.
#pragma once

#include <functional>
#include <string>

namespace pcmoe {

// Calls body(); returns its exit code, or the code for the exception it threw.
int run_main(const std::string& program, const std::function<int()>& body);

}  // namespace pcmoe
