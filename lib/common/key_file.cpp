// Key file text (see key_file.h).
#include "common/key_file.h"

#include <fmt/format.h>

#include "common/error.h"
#include "common/fs.h"

namespace pcmoe::keys {

bool is_z85_key(std::string_view key) {
  static constexpr std::string_view kAlphabet =
      "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
  if (key.size() != kZ85KeyLength) return false;
  for (char c : key) {
    if (kAlphabet.find(c) == std::string_view::npos) return false;
  }
  return true;
}

KeyFileText parse_key_file(const std::string& path) {
  if (!fs::exists(path)) throw ConfigError(fmt::format("key file '{}' not found", path));
  std::string text = fs::read_file(path);
  KeyFileText kf;
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

std::string read_public_key(const std::string& path) {
  KeyFileText kf = parse_key_file(path);
  if (!kf.public_key) throw ConfigError(fmt::format("key file '{}' has no 'public:' line", path));
  return *kf.public_key;
}

}  // namespace pcmoe::keys
