// Owns the text of CURVE key files, without ZeroMQ (configs read public keys at load time):
//   public: <40 Z85 chars>
//   secret: <40 Z85 chars>      (absent in a public-key-only file)
// ('#' comments and blank lines ignored). Parsing only: key derivation and generation are
// net/curve.h. Stateless; thread-safe. Bad files throw ConfigError naming the path and line.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace pcmoe::keys {

constexpr size_t kZ85KeyLength = 40;  // a 32-byte CURVE key in Z85

// 40 characters of the Z85 alphabet.
bool is_z85_key(std::string_view key);

struct KeyFileText {
  std::optional<std::string> public_key, secret_key;
};
// The keys of a key file (either line may be absent).
KeyFileText parse_key_file(const std::string& path);
// The public key of a public-key-only file or of a full key pair file ("public:" line).
std::string read_public_key(const std::string& path);

}  // namespace pcmoe::keys
