// Owns a minimal JSON writer: one flat or nested object built field by field into a string.
// Used by the structured log, the metrics files and machine-readable CLI output. Not a parser.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace pcmoe {

// Appends `s` to `out` as a JSON string literal (quotes included), escaping as RFC 8259 requires.
void json_escape(std::string_view s, std::string& out);

// Builds one JSON object. Not thread-safe; cheap to move.
class JsonObject {
 public:
  JsonObject() : buf_("{") {}

  JsonObject& add(std::string_view key, std::string_view v);
  JsonObject& add(std::string_view key, const char* v) { return add(key, std::string_view(v)); }
  JsonObject& add(std::string_view key, const std::string& v) { return add(key, std::string_view(v)); }
  JsonObject& add(std::string_view key, bool v);
  JsonObject& add(std::string_view key, double v);
  JsonObject& add(std::string_view key, float v) { return add(key, static_cast<double>(v)); }
  template <class I, std::enable_if_t<std::is_integral_v<I> && !std::is_same_v<I, bool>, int> = 0>
  JsonObject& add(std::string_view key, I v) {
    key_(key);
    buf_ += std::to_string(v);
    return *this;
  }
  JsonObject& add(std::string_view key, const JsonObject& nested);
  // Numbers in an array; non-finite values become null.
  JsonObject& add(std::string_view key, const std::vector<double>& v);
  JsonObject& add(std::string_view key, const std::vector<int64_t>& v);
  JsonObject& add(std::string_view key, const std::vector<std::string>& v);
  JsonObject& add(std::string_view key, const std::vector<JsonObject>& v);
  // Inserts already-serialised JSON as the value.
  JsonObject& add_raw(std::string_view key, std::string_view json);

  // The finished object text (closing brace added; the builder stays usable for reading only).
  std::string str() const { return buf_ + "}"; }
  bool empty() const { return buf_.size() == 1; }

 private:
  void key_(std::string_view key);
  std::string buf_;
};

// Formats a double the way JSON wants it: shortest round-trip form, null for NaN/Inf.
std::string json_number(double v);

}  // namespace pcmoe
