// Owns command-line parsing shared by every binary: --config FILE, repeated --set key=value,
// --print-config, --help, --version, plus flags each binary declares. Bad usage throws ConfigError
// (exit 2); --version throws VersionRequested, which run_main (app_main.h) turns into the version
// line on stdout and exit 0, so every binary answers it without code of its own.
#pragma once

#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace pcmoe::cli {

struct Flag {
  std::string name;  // without dashes, e.g. "checkpoint"
  bool takes_value;  // --name VALUE (or --name=VALUE)
  bool repeatable;
  std::string help;
};

struct Spec {
  std::string program;
  std::string summary;
  bool needs_config = true;             // --config is required
  std::vector<Flag> flags;              // in addition to config/set/print-config/help
  std::vector<std::string> positional;  // names of accepted positional arguments, in order
};

struct Args {
  std::string config;
  std::vector<std::string> sets;
  bool print_config = false;
  bool help = false;
  std::map<std::string, std::vector<std::string>> values;  // flag -> values ("" for switches)
  std::vector<std::string> positional;

  bool has(const std::string& flag) const { return values.count(flag) > 0; }
  std::string get(const std::string& flag, const std::string& fallback = "") const;
};

// Thrown by parse() for --version (in the order of the arguments: a bad option before it is reported
// instead): not an error. what() is the version line (common/version.h) without a newline.
class VersionRequested : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

Args parse(int argc, char** argv, const Spec& spec);
std::string usage(const Spec& spec);

}  // namespace pcmoe::cli
