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
#include "common/log.h"

namespace pcmoe::net {

bool curve_available() { return zmq_has("curve") == 1; }

bool is_z85_key(std::string_view key) {
  static constexpr std::string_view kAlphabet =
      "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
  if (key.size() != kZ85KeyLength) return false;
  for (char c : key) {
    if (kAlphabet.find(c) == std::string_view::npos) return false;
  }
  return true;
}

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
void write_private(const std::string& path, const std::string& text, mode_t mode) {
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) throw ConfigError(fmt::format("cannot create key file '{}': {}", tmp, std::strerror(errno)));
  bool ok = ::fchmod(fd, mode) == 0 &&
            ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
  ok = (::close(fd) == 0) && ok;
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    std::string why = std::strerror(errno);
    ::unlink(tmp.c_str());
    throw ConfigError(fmt::format("cannot write key file '{}': {}", path, why));
  }
}

struct KeyFile {
  std::optional<std::string> public_key, secret_key;
};

KeyFile parse_key_file(const std::string& path) {
  if (!fs::exists(path)) throw ConfigError(fmt::format("key file '{}' not found", path));
  std::string text = fs::read_file(path);
  KeyFile kf;
  size_t line_no = 0, pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) {
      line.pop_back();
    }
    if (line.empty() || line[0] == '#') continue;
    size_t colon = line.find(':');
    std::string name = line.substr(0, colon);
    std::string value = colon == std::string::npos ? "" : line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.erase(0, 1);
    auto& slot = name == "public" ? kf.public_key : kf.secret_key;
    if ((name != "public" && name != "secret") || colon == std::string::npos) {
      throw ConfigError(fmt::format("{}:{}: expected 'public: <key>' or 'secret: <key>'", path, line_no));
    }
    if (!is_z85_key(value)) {
      throw ConfigError(fmt::format("{}:{}: {} key is not 40 Z85 characters", path, line_no, name));
    }
    if (slot) throw ConfigError(fmt::format("{}:{}: second '{}' line", path, line_no, name));
    slot = value;
  }
  return kf;
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
  KeyFile kf = parse_key_file(path);
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

std::string read_public_key_file(const std::string& path) {
  KeyFile kf = parse_key_file(path);
  if (!kf.public_key) throw ConfigError(fmt::format("key file '{}' has no 'public:' line", path));
  return *kf.public_key;
}

}  // namespace pcmoe::net
