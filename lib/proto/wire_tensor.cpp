// Owns tensor construction and validation for the wire (see wire_tensor.h). The NaN scan runs on
// every activation frame, so it works on raw bits in blocks the compiler vectorises, and stops at
// the first block holding a bad value.
#include "proto/wire_tensor.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>
#include <cstring>

#include "common/error.h"

namespace pcmoe::proto {

WireTensor wrap_tensor(DType dtype, std::vector<int64_t> shape, std::shared_ptr<const void> owner,
                       const void* data, size_t bytes) {
  auto want = tensor_bytes(dtype, shape);
  PCMOE_CHECK(want && *want == bytes, "tensor of {} {} needs {} bytes, got {}", dtype_name(dtype),
              fmt::join(shape, "x"), want ? *want : 0, bytes);
  WireTensor t;
  t.dtype = dtype;
  t.shape = std::move(shape);
  t.data.owner = std::move(owner);
  t.data.data = static_cast<const uint8_t*>(data);
  t.data.size = bytes;
  return t;
}

WireTensor make_tensor(DType dtype, std::vector<int64_t> shape, const void* data, size_t bytes) {
  Blob b = Blob::copy_of(data, bytes);
  return wrap_tensor(dtype, std::move(shape), b.owner, b.data, b.size);
}

WireTensor wrap_fp8(DType dtype, std::vector<int64_t> shape, uint32_t scale_block, Blob data, Blob scales) {
  PCMOE_CHECK(dtype_is_fp8(dtype), "wrap_fp8: {} is not an fp8 dtype", dtype_name(dtype));
  auto want = tensor_bytes(dtype, shape);
  PCMOE_CHECK(want && *want == data.size && scale_block > 0 && !shape.empty() &&
                  shape.back() % scale_block == 0 && scales.size == *want / scale_block * sizeof(float),
              "fp8 tensor [{}]/{}: {} data bytes, {} scale bytes", fmt::join(shape, "x"), scale_block,
              data.size, scales.size);
  WireTensor t;
  t.dtype = dtype;
  t.shape = std::move(shape);
  t.data = std::move(data);
  t.scale_block = scale_block;
  t.scales = std::move(scales);
  return t;
}

WireTensor make_f32(std::vector<int64_t> shape, const std::vector<float>& values) {
  return make_tensor(DType::f32, std::move(shape), values.data(), values.size() * sizeof(float));
}

WireTensor make_i32(std::vector<int64_t> shape, const std::vector<int32_t>& values) {
  return make_tensor(DType::i32, std::move(shape), values.data(), values.size() * sizeof(int32_t));
}

std::optional<uint64_t> tensor_bytes(DType dtype, const std::vector<int64_t>& shape) {
  uint64_t n = dtype_size(dtype);
  for (int64_t d : shape) {
    if (d < 0) return std::nullopt;
    if (d != 0 && n > UINT64_MAX / static_cast<uint64_t>(d)) return std::nullopt;
    n *= static_cast<uint64_t>(d);
  }
  return n;
}

namespace {

// Returns the index of the first element whose (bits & mask) == mask (exponent all ones).
template <class U>
std::optional<size_t> first_exp_all_ones(const uint8_t* data, size_t n, U mask) {
  constexpr size_t kBlock = 1024;
  for (size_t base = 0; base < n; base += kBlock) {
    size_t end = base + kBlock < n ? base + kBlock : n;
    U bad = 0;
    for (size_t i = base; i < end; ++i) {
      U v;
      std::memcpy(&v, data + i * sizeof(U), sizeof(U));
      bad |= static_cast<U>((v & mask) == mask);
    }
    if (bad) {
      for (size_t i = base; i < end; ++i) {
        U v;
        std::memcpy(&v, data + i * sizeof(U), sizeof(U));
        if ((v & mask) == mask) return i;
      }
    }
  }
  return std::nullopt;
}

template <class S>
std::optional<size_t> first_below_zero(const uint8_t* data, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    S v;
    std::memcpy(&v, data + i * sizeof(S), sizeof(S));
    if (v < 0) return i;
  }
  return std::nullopt;
}

}  // namespace

std::optional<size_t> first_non_finite(DType dtype, const uint8_t* data, size_t n_bytes) {
  switch (dtype) {
    case DType::f32:
      return first_exp_all_ones<uint32_t>(data, n_bytes / 4, 0x7f800000u);
    case DType::bf16:
      return first_exp_all_ones<uint16_t>(data, n_bytes / 2, 0x7f80u);
    case DType::f16:
      return first_exp_all_ones<uint16_t>(data, n_bytes / 2, 0x7c00u);
    case DType::f64:
      return first_exp_all_ones<uint64_t>(data, n_bytes / 8, 0x7ff0000000000000ull);
    case DType::f8e4m3:
      return first_exp_all_ones<uint8_t>(data, n_bytes, uint8_t{0x7f});  // S.1111.111: NaN
    case DType::f8e5m2:
      return first_exp_all_ones<uint8_t>(data, n_bytes, uint8_t{0x7c});  // exponent 31: Inf, NaN
    default:
      return std::nullopt;
  }
}

std::optional<size_t> first_bad_scale(const uint8_t* data, size_t n_bytes) {
  for (size_t i = 0; i < n_bytes / sizeof(float); ++i) {
    float s;
    std::memcpy(&s, data + i * sizeof(float), sizeof s);
    if (!(std::isnormal(s) && s > 0)) return i;
  }
  return std::nullopt;
}

std::optional<size_t> first_negative(DType dtype, const uint8_t* data, size_t n_bytes) {
  if (dtype == DType::i16) return first_below_zero<int16_t>(data, n_bytes / 2);
  if (dtype == DType::i32) return first_below_zero<int32_t>(data, n_bytes / 4);
  return std::nullopt;
}

namespace {

[[noreturn]] void fail(ErrorCode code, std::string_view field, const std::string& why) {
  throw DecodeError(code, fmt::format("tensor '{}': {}", field, why));
}

// An fp8 tensor's scales: finite, > 0 and normal (first_bad_scale).
void check_scales(std::string_view field, const WireTensor& t) {
  if (auto i = first_bad_scale(t.scales.data, t.scales.size)) {
    float s;
    std::memcpy(&s, t.scales.data + *i * sizeof(float), sizeof s);
    fail(ErrorCode::bad_field, field, fmt::format("scale {} is {} (must be finite, > 0 and normal)", *i, s));
  }
}

void check_activations(std::string_view field, const WireTensor& t, const Limits& limits) {
  if (t.dtype != DType::f32 && t.dtype != DType::bf16 && t.dtype != DType::f16 && !dtype_is_fp8(t.dtype)) {
    fail(ErrorCode::bad_dtype, field,
         fmt::format("dtype {} not allowed (fp32, bf16, fp16, fp8e4m3 or fp8e5m2)", dtype_name(t.dtype)));
  }
  if (dtype_is_fp8(t.dtype)) check_scales(field, t);
  if (t.shape.size() != 2) {
    fail(ErrorCode::bad_shape, field, fmt::format("must be 2-D, has {} dims", t.shape.size()));
  }
  if (limits.d_model > 0 && t.shape[1] != limits.d_model) {
    fail(ErrorCode::bad_shape, field, fmt::format("width {} != d_model {}", t.shape[1], limits.d_model));
  }
  if (t.shape[0] > limits.max_rows) {
    fail(ErrorCode::too_large, field,
         fmt::format("{} rows exceed the limit {}", t.shape[0], limits.max_rows));
  }
}

void check_expert_ids(std::string_view field, const WireTensor& t, const Limits& limits) {
  if (t.dtype != DType::i16 && t.dtype != DType::i32) {
    fail(ErrorCode::bad_dtype, field,
         fmt::format("dtype {} not allowed (int16 or int32)", dtype_name(t.dtype)));
  }
  if (t.shape.size() != 1) {
    fail(ErrorCode::bad_shape, field, fmt::format("must be 1-D, has {} dims", t.shape.size()));
  }
  if (t.shape[0] > limits.max_rows) {
    fail(ErrorCode::too_large, field,
         fmt::format("{} rows exceed the limit {}", t.shape[0], limits.max_rows));
  }
  if (auto i = first_negative(t.dtype, t.data.data, t.data.size)) {
    fail(ErrorCode::bad_field, field, fmt::format("negative expert id at row {}", *i));
  }
}

}  // namespace

void check_tensor(std::string_view field, const WireTensor& t, TensorRole role, const Limits& limits) {
  switch (role) {
    case TensorRole::activations:
      check_activations(field, t, limits);
      break;
    case TensorRole::expert_ids:
      check_expert_ids(field, t, limits);
      break;
    case TensorRole::parameters:
      if (!dtype_is_float(t.dtype)) {
        fail(ErrorCode::bad_dtype, field,
             fmt::format("dtype {} not allowed (a float type)", dtype_name(t.dtype)));
      }
      break;
  }
  if (auto i = first_non_finite(t.dtype, t.data.data, t.data.size)) {
    fail(ErrorCode::non_finite, field, fmt::format("NaN or Inf at element {}", *i));
  }
}

std::string describe_tensor(const WireTensor& t) {
  if (dtype_is_fp8(t.dtype))
    return fmt::format("{}[{}]/{}", dtype_name(t.dtype), fmt::join(t.shape, ","), t.scale_block);
  return fmt::format("{}[{}]", dtype_name(t.dtype), fmt::join(t.shape, ","));
}

}  // namespace pcmoe::proto
