// JSON writer: escaping and number formatting (see json.h).
#include "common/json.h"

#include <fmt/format.h>

#include <cmath>

namespace pcmoe {

void json_escape(std::string_view s, std::string& out) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          out += fmt::format("\\u{:04x}", c);
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

std::string json_number(double v) {
  if (!std::isfinite(v)) return "null";
  if (v == std::floor(v) && std::fabs(v) < 1e15) return fmt::format("{:.1f}", v);
  return fmt::format("{}", v);
}

void JsonObject::key_(std::string_view key) {
  if (buf_.size() > 1) buf_ += ',';
  json_escape(key, buf_);
  buf_ += ':';
}

JsonObject& JsonObject::add(std::string_view key, std::string_view v) {
  key_(key);
  json_escape(v, buf_);
  return *this;
}

JsonObject& JsonObject::add(std::string_view key, bool v) {
  key_(key);
  buf_ += v ? "true" : "false";
  return *this;
}

JsonObject& JsonObject::add(std::string_view key, double v) {
  key_(key);
  buf_ += json_number(v);
  return *this;
}

JsonObject& JsonObject::add(std::string_view key, const JsonObject& nested) {
  return add_raw(key, nested.str());
}

JsonObject& JsonObject::add(std::string_view key, const std::vector<double>& v) {
  key_(key);
  buf_ += '[';
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) buf_ += ',';
    buf_ += json_number(v[i]);
  }
  buf_ += ']';
  return *this;
}

JsonObject& JsonObject::add(std::string_view key, const std::vector<int64_t>& v) {
  key_(key);
  buf_ += '[';
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) buf_ += ',';
    buf_ += std::to_string(v[i]);
  }
  buf_ += ']';
  return *this;
}

JsonObject& JsonObject::add(std::string_view key, const std::vector<std::string>& v) {
  key_(key);
  buf_ += '[';
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) buf_ += ',';
    json_escape(v[i], buf_);
  }
  buf_ += ']';
  return *this;
}

JsonObject& JsonObject::add(std::string_view key, const std::vector<JsonObject>& v) {
  key_(key);
  buf_ += '[';
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) buf_ += ',';
    buf_ += v[i].str();
  }
  buf_ += ']';
  return *this;
}

JsonObject& JsonObject::add_raw(std::string_view key, std::string_view json) {
  key_(key);
  buf_ += json;
  return *this;
}

}  // namespace pcmoe
