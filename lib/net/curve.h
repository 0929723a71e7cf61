// Owns CURVE key material: availability check, key-pair generation (Z85 strings), and key files.
// Key file format (text, one key per line, '#' comments and blank lines ignored):
//   public: <40 Z85 chars>
//   secret: <40 Z85 chars>      (absent in a public-key-only file)
// Secret files are written with mode 0600 (atomically: temp file, fsync, rename); a secret file
// readable by group or others is reported with a "net.key_file_mode" warning when read.
// Stateless functions; thread-safe. Bad files and keys throw ConfigError naming the path.
#pragma once

#include <string>
#include <string_view>

namespace pcmoe::net {

constexpr size_t kZ85KeyLength = 40;  // a 32-byte CURVE key in Z85

struct CurveKeyPair {
  std::string public_key;  // Z85
  std::string secret_key;  // Z85; never logged
};

// zmq_has("curve"): libzmq was built with CURVE (libsodium).
bool curve_available();
// 40 characters of the Z85 alphabet.
bool is_z85_key(std::string_view key);

// A fresh key pair. Throws ConfigError when CURVE is not available.
CurveKeyPair generate_keypair();
// The public key that belongs to `secret_key`. Throws ConfigError on a bad key.
std::string public_key_of(const std::string& secret_key);

void write_key_file(const std::string& path, const CurveKeyPair& keys);              // mode 0600
void write_public_key_file(const std::string& path, const std::string& public_key);  // mode 0644
// Both keys; checks that the public key matches the secret one.
CurveKeyPair read_key_file(const std::string& path);
// The public key of a public-key-only file or of a full key file.
std::string read_public_key_file(const std::string& path);

}  // namespace pcmoe::net
