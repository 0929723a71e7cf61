// Command-line parsing (see cli.h).
#include "common/cli.h"

#include <fmt/format.h>

#include "common/error.h"
#include "common/version.h"

namespace pcmoe::cli {

std::string Args::get(const std::string& flag, const std::string& fallback) const {
  auto it = values.find(flag);
  if (it == values.end() || it->second.empty()) return fallback;
  return it->second.back();
}

std::string usage(const Spec& spec) {
  std::string u =
      fmt::format("usage: {}{}", spec.program, spec.needs_config ? " --config FILE" : " [--config FILE]");
  for (const auto& p : spec.positional) u += " [" + p + "]";
  u += " [--set key=value ...] [--print-config] [--version]";
  for (const auto& f : spec.flags) u += fmt::format(" [--{}{}]", f.name, f.takes_value ? " VALUE" : "");
  u += "\n\n" + spec.summary +
       "\n\n  --config FILE        YAML configuration file\n"
       "  --set key=value      override one configuration key (repeatable)\n"
       "  --print-config       print the effective configuration as YAML and exit\n"
       "  --version            print the version (git describe, protocol version) and exit\n";
  for (const auto& f : spec.flags) {
    u += fmt::format("  --{:<18} {}\n", f.name + (f.takes_value ? " V" : ""), f.help);
  }
  return u;
}

Args parse(int argc, char** argv, const Spec& spec) {
  Args a;
  auto find_flag = [&](const std::string& name) -> const Flag* {
    for (const auto& f : spec.flags) {
      if (f.name == name) return &f;
    }
    return nullptr;
  };
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind("--", 0) != 0) {
      if (a.positional.size() >= spec.positional.size()) {
        throw ConfigError(fmt::format("{}: unexpected argument '{}'\n{}", spec.program, arg, usage(spec)));
      }
      a.positional.push_back(arg);
      continue;
    }
    std::string name = arg.substr(2);
    std::string value;
    bool has_inline = false;
    if (auto eq = name.find('='); eq != std::string::npos && name.rfind("set", 0) != 0) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_inline = true;
    }
    auto take_value = [&]() -> std::string {
      if (has_inline) return value;
      if (i + 1 >= argc)
        throw ConfigError(fmt::format("{}: --{} needs a value\n{}", spec.program, name, usage(spec)));
      return argv[++i];
    };
    if (name == "version") {
      throw VersionRequested(version::line(spec.program));  // what --config or --set say does not matter
    } else if (name == "help" || name == "h") {
      a.help = true;
    } else if (name == "config") {
      a.config = take_value();
    } else if (name == "set" || name.rfind("set=", 0) == 0) {
      if (name.size() > 3) {
        a.sets.push_back(name.substr(4));
      } else {
        a.sets.push_back(take_value());
      }
    } else if (name == "print-config") {
      a.print_config = true;
    } else if (const Flag* f = find_flag(name)) {
      if (!f->repeatable && a.values.count(name)) {
        throw ConfigError(fmt::format("{}: --{} given twice", spec.program, name));
      }
      a.values[name].push_back(f->takes_value ? take_value() : "");
    } else {
      throw ConfigError(fmt::format("{}: unknown option '{}'\n{}", spec.program, arg, usage(spec)));
    }
  }
  if (!a.help && spec.needs_config && a.config.empty()) {
    throw ConfigError(fmt::format("{}: --config FILE is required\n{}", spec.program, usage(spec)));
  }
  return a;
}

}  // namespace pcmoe::cli
