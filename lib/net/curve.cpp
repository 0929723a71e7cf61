// Owns CURVE keys and key files (see curve.h).
#include "net/curve.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include <cerrno>
#include <cstring>
#include <optional>

#include "common/error.h"
#include "common/fs.h"
#include "common/key_file.h"
#include "common/log.h"

namespace pcmoe::net {

bool curve_available() { return zmq_has("curve") == 1; }

bool is_z85_key(std::string_view key) { return keys::is_z85_key(key); }

CurveKeyPair generate_keypair() {
  if (!curve_available()) {
    throw ConfigError("CURVE is not available in this libzmq (built without libsodium)");
  }
  char pub[kZ85KeyLength + 1] = {0}, sec[kZ85KeyLength + 1] = {0};
  if (zmq_curve_keypair(pub, sec) != 0) {
    throw ConfigError(fmt::format("zmq_curve_keypair failed: {}", zmq_strerror(zmq_errno())));
  }
  return {pub, sec};
}

std::string public_key_of(const std::string& secret_key) {
  if (!is_z85_key(secret_key)) throw ConfigError("secret key is not a 40-character Z85 key");
  char pub[kZ85KeyLength + 1] = {0};
  if (zmq_curve_public(pub, secret_key.c_str()) != 0) {
    throw ConfigError(fmt::format("zmq_curve_public failed: {}", zmq_strerror(zmq_errno())));
  }
  return pub;
}

namespace {

// Writes `text` to `path` atomically with `mode` from the start (never briefly world-readable).
void write_private(const std::string& path, const std::string& text, unsigned mode) {
  try {
    fs::atomic_write(path, text, mode);
  } catch (const Error& e) {
    throw ConfigError(fmt::format("cannot write key file '{}': {}", path, e.what()));
  }
}

}  // namespace

void write_key_file(const std::string& path, const CurveKeyPair& keys) {
  PCMOE_CHECK_T(ConfigError, is_z85_key(keys.public_key) && is_z85_key(keys.secret_key),
                "refusing to write invalid keys to '{}'", path);
  write_private(path,
                fmt::format("# pcmoe CURVE key pair: keep secret\npublic: {}\nsecret: {}\n", keys.public_key,
                            keys.secret_key),
                0600);
}

void write_public_key_file(const std::string& path, const std::string& public_key) {
  PCMOE_CHECK_T(ConfigError, is_z85_key(public_key), "refusing to write an invalid public key to '{}'", path);
  write_private(path, fmt::format("# pcmoe CURVE public key\npublic: {}\n", public_key), 0644);
}

CurveKeyPair read_key_file(const std::string& path) {
  keys::KeyFileText kf = keys::parse_key_file(path);
  if (!kf.secret_key) throw ConfigError(fmt::format("key file '{}' has no 'secret:' line", path));
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && (st.st_mode & 077) != 0) {
    PCMOE_WARN("net.key_file_mode").kv("path", path).kv("mode", fmt::format("{:o}", st.st_mode & 0777));
  }
  std::string derived = public_key_of(*kf.secret_key);
  if (kf.public_key && *kf.public_key != derived) {
    throw ConfigError(fmt::format("key file '{}': the public key does not match the secret key", path));
  }
  return {derived, *kf.secret_key};
}

std::string read_public_key_file(const std::string& path) { return keys::read_public_key(path); }

}  // namespace pcmoe::net
