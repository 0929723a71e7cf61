// Prometheus text format (see prometheus.h).
#include "hub/prometheus.h"

#include <fmt/format.h>

#include <cmath>

namespace pcmoe::hub {

std::string PromText::escape_label(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string PromText::number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == std::floor(v) && std::fabs(v) < 1e15) return fmt::format("{:.0f}", v);
  return fmt::format("{}", v);
}

PromText& PromText::family(const std::string& name, const std::string& type, const std::string& help) {
  name_ = name;
  out_ += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  return *this;
}

PromText& PromText::sample(double value, const PromLabels& labels) {
  out_ += name_;
  if (!labels.empty()) {
    out_ += '{';
    for (size_t i = 0; i < labels.size(); ++i) {
      out_ += fmt::format("{}{}=\"{}\"", i ? "," : "", labels[i].first, escape_label(labels[i].second));
    }
    out_ += '}';
  }
  out_ += ' ' + number(value) + '\n';
  return *this;
}

}  // namespace pcmoe::hub
