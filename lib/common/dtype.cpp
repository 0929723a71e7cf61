// DType names and parsing (see dtype.h).
#include "common/dtype.h"

namespace pcmoe {

std::string_view dtype_name(DType d) {
  switch (d) {
    case DType::f32:
      return "fp32";
    case DType::f16:
      return "fp16";
    case DType::bf16:
      return "bf16";
    case DType::f64:
      return "fp64";
    case DType::i64:
      return "int64";
    case DType::i32:
      return "int32";
    case DType::i16:
      return "int16";
    case DType::u8:
      return "uint8";
    case DType::i8:
      return "int8";
    case DType::boolean:
      return "bool";
    case DType::f8e4m3:
      return "fp8e4m3";
    case DType::f8e5m2:
      return "fp8e5m2";
  }
  return "?";
}

std::optional<DType> parse_dtype(std::string_view n) {
  if (n == "fp32" || n == "f32" || n == "float32") return DType::f32;
  if (n == "fp16" || n == "f16" || n == "float16") return DType::f16;
  if (n == "bf16" || n == "bfloat16") return DType::bf16;
  if (n == "fp64" || n == "f64" || n == "float64") return DType::f64;
  if (n == "int64") return DType::i64;
  if (n == "int32") return DType::i32;
  if (n == "int16") return DType::i16;
  if (n == "uint8") return DType::u8;
  if (n == "int8") return DType::i8;
  if (n == "bool") return DType::boolean;
  if (n == "fp8e4m3" || n == "f8e4m3" || n == "float8_e4m3fn") return DType::f8e4m3;
  if (n == "fp8e5m2" || n == "f8e5m2" || n == "float8_e5m2") return DType::f8e5m2;
  return std::nullopt;
}

std::optional<DType> dtype_from_code(uint64_t code) {
  if (code >= static_cast<uint64_t>(kNumDTypes)) return std::nullopt;
  return static_cast<DType>(code);
}

}  // namespace pcmoe
