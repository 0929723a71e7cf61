// Owns the checked reading of header fields and tensor descriptors (see field_reader.h).
#include "proto/field_reader.h"

#include <cmath>

namespace pcmoe::proto {

FieldReader::FieldReader(MpReader& r, const Limits& limits, FrameCursor& frames, std::string prefix)
    : r_(r), limits_(limits), frames_(frames), prefix_(std::move(prefix)) {
  std::string what = prefix_.empty() ? "header" : prefix_.substr(0, prefix_.size() - 1);
  uint32_t n = r_.read_map(what);
  if (n > kMaxKeys) {
    throw DecodeError(ErrorCode::too_large,
                      fmt::format("map '{}' has {} keys (limit {})", what, n, kMaxKeys));
  }
  index_.reserve(n);
  for (uint32_t i = 0; i < n; ++i) {
    if (r_.peek() != MpKind::str) {
      throw DecodeError(ErrorCode::malformed, fmt::format("map '{}': key {} is a {}, not a string", what, i,
                                                          mp_kind_name(r_.peek())));
    }
    std::string_view key = r_.read_str(what);
    if (key.size() > kMaxKeyBytes) {
      throw DecodeError(ErrorCode::too_large,
                        fmt::format("map '{}': key {} has {} bytes", what, i, key.size()));
    }
    if (find_(key)) {
      throw DecodeError(ErrorCode::bad_field,
                        fmt::format("map '{}': duplicate key '{}'", what, key.substr(0, 32)));
    }
    index_.push_back({key, r_.offset()});
    r_.skip(what);
  }
}

const FieldReader::Entry* FieldReader::find_(std::string_view key) const {
  for (const Entry& e : index_) {
    if (e.key == key) return &e;
  }
  return nullptr;
}

void FieldReader::seek_(const char* key) {
  const Entry* e = find_(key);
  if (!e) throw DecodeError(ErrorCode::bad_field, fmt::format("missing field '{}'", name_(key)));
  r_.seek(e->offset);
}

uint32_t FieldReader::array_(const char* key) {
  uint32_t n = r_.read_array(name_(key));
  if (n > limits_.max_array_len) {
    throw DecodeError(ErrorCode::too_large, fmt::format("field '{}': {} elements (limit {})", name_(key), n,
                                                        limits_.max_array_len));
  }
  return n;
}

uint64_t FieldReader::checked_uint_(const std::string& field, uint64_t lo, uint64_t hi, int64_t index) {
  uint64_t x = r_.read_uint(field);  // wrong type or negative: bad_field
  if (x < lo || x > hi) {
    std::string at = index >= 0 ? fmt::format("[{}]", index) : "";
    throw DecodeError(ErrorCode::bad_field,
                      fmt::format("field '{}{}': {} out of range [{}, {}]", field, at, x, lo, hi));
  }
  return x;
}

void FieldReader::str(const char* key, std::string& s) {
  seek_(key);
  std::string_view v = r_.read_str(name_(key));
  if (v.size() > limits_.max_string_bytes) {
    throw DecodeError(ErrorCode::too_large, fmt::format("field '{}': string of {} bytes (limit {})",
                                                        name_(key), v.size(), limits_.max_string_bytes));
  }
  s.assign(v);
}

void FieldReader::boolean(const char* key, bool& b) {
  seek_(key);
  b = r_.read_bool(name_(key));
}

void FieldReader::int64(const char* key, int64_t& x, int64_t lo) {
  seek_(key);
  x = r_.read_int(name_(key));
  if (x < lo) {
    throw DecodeError(ErrorCode::bad_field, fmt::format("field '{}': {} is below {}", name_(key), x, lo));
  }
}

namespace {
bool real_ok(double x, Real rule) {
  switch (rule) {
    case Real::any:
      return true;
    case Real::finite:
      return std::isfinite(x);
    case Real::finite_nonneg:
      return std::isfinite(x) && x >= 0;
    case Real::nonneg:
      return !std::isnan(x) && x >= 0;
  }
  return false;
}

std::string_view real_rule_name(Real rule) {
  switch (rule) {
    case Real::any:
      return "any";
    case Real::finite:
      return "finite";
    case Real::finite_nonneg:
      return "finite and >= 0";
    case Real::nonneg:
      return ">= 0 and not NaN";
  }
  return "?";
}
}  // namespace

void FieldReader::real(const char* key, double& x, Real rule) {
  seek_(key);
  x = r_.read_double(name_(key));
  if (!real_ok(x, rule)) {
    throw DecodeError(ErrorCode::bad_field,
                      fmt::format("field '{}': {} must be {}", name_(key), x, real_rule_name(rule)));
  }
}

void FieldReader::real_matrix(const char* key, std::vector<std::vector<double>>& xss, Real rule) {
  seek_(key);
  uint32_t n = array_(key);
  xss.clear();  // grown row by row: memory follows the bytes actually parsed
  std::string field = name_(key);
  for (size_t i = 0; i < n; ++i) {
    xss.emplace_back().resize(array_(key));
    for (size_t j = 0; j < xss[i].size(); ++j) {
      double x = r_.read_double(field);
      if (!real_ok(x, rule)) {
        throw DecodeError(ErrorCode::bad_field, fmt::format("field '{}[{}][{}]': {} must be {}", field, i, j,
                                                            x, real_rule_name(rule)));
      }
      xss[i][j] = x;
    }
  }
}

void FieldReader::strs(const char* key, std::vector<std::string>& xs) {
  seek_(key);
  uint32_t n = array_(key);
  xs.clear();  // grown one by one: memory follows the bytes actually parsed
  std::string field = name_(key);
  for (uint32_t i = 0; i < n; ++i) {
    std::string& s = xs.emplace_back();
    std::string_view v = r_.read_str(field);
    if (v.size() > limits_.max_string_bytes) {
      throw DecodeError(ErrorCode::too_large, fmt::format("field '{}': string of {} bytes (limit {})", field,
                                                          v.size(), limits_.max_string_bytes));
    }
    s.assign(v);
  }
}

WireTensor FieldReader::read_tensor_(const std::string& field, TensorRole role) {
  const uint32_t n_desc = r_.read_array(field);
  if (n_desc != 2 && n_desc != 3) {
    throw DecodeError(
        ErrorCode::bad_field,
        fmt::format("tensor '{}': descriptor must be [dtype, shape] or (fp8) [dtype, shape, block]", field));
  }
  uint64_t code = r_.read_uint(field);
  auto dtype = dtype_from_code(code);
  if (!dtype) {
    throw DecodeError(ErrorCode::bad_dtype, fmt::format("tensor '{}': unknown dtype code {}", field, code));
  }
  if ((n_desc == 3) != dtype_is_fp8(*dtype)) {
    throw DecodeError(
        ErrorCode::bad_field,
        fmt::format("tensor '{}': a {} descriptor has {} elements ({})", field, dtype_name(*dtype), n_desc,
                    dtype_is_fp8(*dtype) ? "fp8 needs [dtype, shape, block]" : "only fp8 has a scale block"));
  }
  uint32_t n_dims = r_.read_array(field);
  if (n_dims > kMaxTensorDims) {
    throw DecodeError(ErrorCode::bad_shape,
                      fmt::format("tensor '{}': {} dims (limit {})", field, n_dims, kMaxTensorDims));
  }
  WireTensor t;
  t.dtype = *dtype;
  t.shape.resize(n_dims);
  for (auto& d : t.shape) {
    d = r_.read_int(field);
    if (d < 0) throw DecodeError(ErrorCode::bad_shape, fmt::format("tensor '{}': negative dim {}", field, d));
  }
  auto bytes = tensor_bytes(t.dtype, t.shape);
  if (!bytes || *bytes > limits_.max_frame_bytes) {
    throw DecodeError(ErrorCode::too_large, fmt::format("tensor '{}': {} is over the frame limit of {} bytes",
                                                        field, describe_tensor(t), limits_.max_frame_bytes));
  }
  if (frames_.next >= frames_.frames->size()) {
    throw DecodeError(ErrorCode::malformed, fmt::format("tensor '{}': no frame left ({} frames in all)",
                                                        field, frames_.frames->size()));
  }
  t.data = (*frames_.frames)[frames_.next++];
  if (t.data.size != *bytes) {
    throw DecodeError(ErrorCode::bad_shape, fmt::format("tensor '{}': {} needs {} bytes, its frame has {}",
                                                        field, describe_tensor(t), *bytes, t.data.size));
  }
  if (n_desc == 3) read_scales_(field, t);
  check_tensor(field, t, role, limits_);
  return t;
}

void FieldReader::read_scales_(const std::string& field, WireTensor& t) {
  const uint64_t block = r_.read_uint(field);
  const int64_t last = t.shape.empty() ? 0 : t.shape.back();
  if (block == 0 || last == 0 || block > static_cast<uint64_t>(last) ||
      last % static_cast<int64_t>(block) != 0) {
    throw DecodeError(ErrorCode::bad_shape,
                      fmt::format("tensor '{}': scale block {} does not divide the last "
                                  "dimension {}",
                                  field, block, last));
  }
  t.scale_block = static_cast<uint32_t>(block);
  if (frames_.next >= frames_.frames->size()) {
    throw DecodeError(ErrorCode::malformed, fmt::format("tensor '{}': no frame left for its scales", field));
  }
  t.scales = (*frames_.frames)[frames_.next++];
  const uint64_t want = static_cast<uint64_t>(t.data.size) / block * sizeof(float);
  if (t.scales.size != want) {
    throw DecodeError(ErrorCode::bad_shape,
                      fmt::format("tensor '{}': {} needs {} scale bytes, its frame has {}", field,
                                  describe_tensor(t), want, t.scales.size));
  }
}

void FieldReader::tensor(const char* key, WireTensor& t, TensorRole role) {
  seek_(key);
  t = read_tensor_(name_(key), role);
}

void FieldReader::tensors(const char* key, std::vector<WireTensor>& ts, TensorRole role) {
  seek_(key);
  uint32_t n = r_.read_array(name_(key));
  if (n > limits_.max_tensors) {
    throw DecodeError(ErrorCode::too_large,
                      fmt::format("field '{}': {} tensors (limit {})", name_(key), n, limits_.max_tensors));
  }
  size_t frames_left = frames_.frames->size() - frames_.next;
  if (n > frames_left) {
    throw DecodeError(ErrorCode::malformed, fmt::format("field '{}': {} tensors declared, {} frames left",
                                                        name_(key), n, frames_left));
  }
  ts.assign(n, {});
  for (size_t i = 0; i < ts.size(); ++i) ts[i] = read_tensor_(fmt::format("{}[{}]", name_(key), i), role);
}

}  // namespace pcmoe::proto
