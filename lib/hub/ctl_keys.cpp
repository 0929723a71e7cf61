// pcmoe-ctl's key generation and key choice (see ctl_keys.h).
#include "hub/ctl_keys.h"

#include <fmt/format.h>
#include <sys/stat.h>

#include <vector>

#include "common/error.h"
#include "common/fs.h"
#include "common/json.h"

namespace pcmoe::hub {
namespace {

std::vector<std::string> split_names(const std::string& text) {
  std::vector<std::string> names;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string::npos) comma = text.size();
    const std::string name = text.substr(start, comma - start);
    const bool ok = !name.empty() && name.find_first_not_of(
                                         "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                         "0123456789-_") == std::string::npos;
    if (!ok)
      throw ConfigError(fmt::format("pcmoe-ctl keygen --names: '{}' is not a name ([A-Za-z0-9_-]+)", name));
    names.push_back(name);
    start = comma + 1;
  }
  return names;
}

// DIR/NAME.key and DIR/NAME.pub for every name; an existing pair is kept (its public key printed).
int keygen_dir(const cli::Args& args, std::FILE* out) {
  const std::string dir = args.get("dir");
  if (!args.has("names")) throw ConfigError("pcmoe-ctl keygen --dir DIR needs --names NAME[,NAME...]");
  fs::make_dirs(dir);
  ::chmod(dir.c_str(), 0700);  // the folder of secret keys: owner only
  JsonObject all;
  for (const auto& name : split_names(args.get("names"))) {
    const std::string key = fs::join(dir, name + ".key"), pub = fs::join(dir, name + ".pub");
    std::string public_key;
    if (fs::exists(key)) {
      public_key = net::read_key_file(key).public_key;
    } else {
      const net::CurveKeyPair keys = net::generate_keypair();
      net::write_key_file(key, keys);
      public_key = keys.public_key;
    }
    if (!fs::exists(pub)) net::write_public_key_file(pub, public_key);
    all.add(name, public_key);
    if (!args.has("json")) std::fprintf(out, "%s %s\n", name.c_str(), public_key.c_str());
  }
  if (args.has("json")) std::fprintf(out, "%s\n", all.str().c_str());
  return kExitOk;
}

}  // namespace

int run_keygen(const cli::Args& args, std::FILE* out) {
  if (args.has("dir")) return keygen_dir(args, out);
  const std::string path = args.get("out");
  if (path.empty()) {
    throw ConfigError(
        "pcmoe-ctl keygen needs --out FILE (one key pair) or --dir DIR --names A,B,... (a set)");
  }
  net::CurveKeyPair keys = net::generate_keypair();
  net::write_key_file(path, keys);
  const std::string pub_path = args.get("public-out");
  if (!pub_path.empty()) net::write_public_key_file(pub_path, keys.public_key);
  if (args.has("json")) {
    JsonObject j;
    j.add("public_key", keys.public_key).add("key_file", path).add("public_key_file", pub_path);
    std::fprintf(out, "%s\n", j.str().c_str());
  } else {
    std::fprintf(out, "%s\n", keys.public_key.c_str());
  }
  return kExitOk;
}

std::optional<net::CurveKeyPair> operator_key_pair(const cli::Args& args, const std::string& fallback_file) {
  const std::string file = args.has("key") ? args.get("key") : fallback_file;
  if (file.empty()) return std::nullopt;
  return net::read_key_file(file);
}

std::string hub_key_value(const std::string& value) {
  if (net::is_z85_key(value)) return value;
  if (fs::exists(value)) return net::read_public_key_file(value);
  throw ConfigError(
      fmt::format("pcmoe-ctl --hub-key: '{}' is neither a 40-character Z85 key nor a key file", value));
}

}  // namespace pcmoe::hub
