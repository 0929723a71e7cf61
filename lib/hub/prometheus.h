// Owns the Prometheus text exposition format (version 0.0.4) as the hub's /metrics writes it:
// families with # HELP and # TYPE, samples with escaped label values, numbers as Prometheus reads
// them (NaN, +Inf, -Inf). Not thread-safe; a value type used by one render.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace pcmoe::hub {

using PromLabels = std::vector<std::pair<std::string, std::string>>;

class PromText {
 public:
  // Starts a family: `type` is "gauge" or "counter"; counters' names end in _total by convention.
  PromText& family(const std::string& name, const std::string& type, const std::string& help);
  // One sample of the current family.
  PromText& sample(double value, const PromLabels& labels = {});
  const std::string& str() const { return out_; }

  static std::string escape_label(const std::string& v);  // backslash, double quote, newline
  static std::string number(double v);

 private:
  std::string out_;
  std::string name_;
};

}  // namespace pcmoe::hub
