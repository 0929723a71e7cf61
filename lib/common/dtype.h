// Owns the element types that travel in tensor files and on the wire. The numeric codes are part
// of the file format and of the protocol (proto/PROTOCOL.md): never renumber.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace pcmoe {

enum class DType : uint8_t {
  f32 = 0,
  f16 = 1,
  bf16 = 2,
  f64 = 3,
  i64 = 4,
  i32 = 5,
  i16 = 6,
  u8 = 7,
  i8 = 8,
  boolean = 9,
  f8e4m3 = 10,  // OCP FP8 E4M3 ("fn"): wire activations with scales (protocol 1.1; common/fp8.h)
  f8e5m2 = 11,  // OCP FP8 E5M2: the same, more range, less precision
};
constexpr int kNumDTypes = 12;

constexpr size_t dtype_size(DType d) {
  switch (d) {
    case DType::f32:
      return 4;
    case DType::f16:
      return 2;
    case DType::bf16:
      return 2;
    case DType::f64:
      return 8;
    case DType::i64:
      return 8;
    case DType::i32:
      return 4;
    case DType::i16:
      return 2;
    case DType::u8:
      return 1;
    case DType::i8:
      return 1;
    case DType::boolean:
      return 1;
    case DType::f8e4m3:
      return 1;
    case DType::f8e5m2:
      return 1;
  }
  return 0;
}

// The float types a tensor can hold on its own (fp8 needs scales: dtype_is_fp8).
constexpr bool dtype_is_float(DType d) {
  return d == DType::f32 || d == DType::f16 || d == DType::bf16 || d == DType::f64;
}

constexpr bool dtype_is_fp8(DType d) { return d == DType::f8e4m3 || d == DType::f8e5m2; }

std::string_view dtype_name(DType d);
// Parses "fp32"/"f32", "fp16"/"f16", "bf16", ... ; nullopt when unknown.
std::optional<DType> parse_dtype(std::string_view name);
// Validates a raw code from a file or a message.
std::optional<DType> dtype_from_code(uint64_t code);

}  // namespace pcmoe
