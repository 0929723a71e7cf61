// Owns the JSON text of number matrices (per-layer, per-expert tables), which common/json.h's
// JsonObject does not build: "[[1,2],[3,4]]". Non-finite doubles become null. Header-only.
#pragma once

#include <string>
#include <type_traits>
#include <vector>

#include "common/json.h"

namespace pcmoe::hub {

template <class T>
std::string json_array(const std::vector<T>& row) {
  std::string out = "[";
  for (size_t i = 0; i < row.size(); ++i) {
    if (i) out += ',';
    if constexpr (std::is_floating_point_v<T>) {
      out += json_number(static_cast<double>(row[i]));
    } else {
      out += std::to_string(row[i]);
    }
  }
  return out + "]";
}

template <class T>
std::string json_matrix(const std::vector<std::vector<T>>& m) {
  std::string out = "[";
  for (size_t i = 0; i < m.size(); ++i) {
    if (i) out += ',';
    out += json_array(m[i]);
  }
  return out + "]";
}

}  // namespace pcmoe::hub
