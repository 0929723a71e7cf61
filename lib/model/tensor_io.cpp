// torch <-> raw tensor conversions and module state I/O (see tensor_io.h).
#include "model/tensor_io.h"

#include <fmt/format.h>

#include <cstring>

#include "common/error.h"

namespace pcmoe::model {

DType to_dtype(torch::ScalarType t) {
  switch (t) {
    case torch::kFloat32:
      return DType::f32;
    case torch::kFloat16:
      return DType::f16;
    case torch::kBFloat16:
      return DType::bf16;
    case torch::kFloat64:
      return DType::f64;
    case torch::kInt64:
      return DType::i64;
    case torch::kInt32:
      return DType::i32;
    case torch::kInt16:
      return DType::i16;
    case torch::kUInt8:
      return DType::u8;
    case torch::kInt8:
      return DType::i8;
    case torch::kBool:
      return DType::boolean;
    default:
      throw ModelError(fmt::format("tensor dtype {} has no pcmoe dtype code", c10::toString(t)));
  }
}

torch::ScalarType to_scalar_type(DType d) {
  switch (d) {
    case DType::f32:
      return torch::kFloat32;
    case DType::f16:
      return torch::kFloat16;
    case DType::bf16:
      return torch::kBFloat16;
    case DType::f64:
      return torch::kFloat64;
    case DType::i64:
      return torch::kInt64;
    case DType::i32:
      return torch::kInt32;
    case DType::i16:
      return torch::kInt16;
    case DType::u8:
      return torch::kUInt8;
    case DType::i8:
      return torch::kInt8;
    case DType::boolean:
      return torch::kBool;
    case DType::f8e4m3:
    case DType::f8e5m2:
      throw ModelError(
          fmt::format("{} data is bytes plus scales here (party/wire.h), not a tensor type", dtype_name(d)));
  }
  throw ModelError("unknown dtype code");
}

std::string shape_str(const torch::Tensor& t) {
  std::string s = "[";
  for (int64_t i = 0; i < t.dim(); ++i) s += (i ? ", " : "") + std::to_string(t.size(i));
  return s + "]";
}

RawTensor to_raw(const std::string& name, const torch::Tensor& t) {
  RawTensor r;
  r.name = name;
  r.dtype = to_dtype(t.scalar_type());
  r.shape = t.sizes().vec();
  auto c = t.detach().to(torch::kCPU).contiguous();
  r.bytes.assign(static_cast<const char*>(c.data_ptr()), static_cast<size_t>(c.numel()) * c.element_size());
  return r;
}

torch::Tensor tensor_from_bytes(DType dtype, const std::vector<int64_t>& shape, const void* bytes) {
  auto t = torch::empty(shape, torch::TensorOptions().dtype(to_scalar_type(dtype)));
  if (t.numel() > 0) std::memcpy(t.data_ptr(), bytes, static_cast<size_t>(t.numel()) * t.element_size());
  return t;
}

torch::Tensor from_raw(const RawTensor& raw) {
  return tensor_from_bytes(raw.dtype, raw.shape, raw.bytes.data());
}

NamedTensors module_state(const torch::nn::Module& m, const std::string& prefix) {
  NamedTensors out;
  for (const auto& p : m.named_parameters(true)) out.emplace_back(prefix + p.key(), p.value());
  for (const auto& b : m.named_buffers(true)) out.emplace_back(prefix + b.key(), b.value());
  return out;
}

torch::Tensor find_tensor(const TensorFile& file, const std::string& name) {
  const RawTensor* r = file.find(name);
  return r ? from_raw(*r) : torch::Tensor();
}

void load_module_state(torch::nn::Module& m, const TensorFile& file, const std::string& prefix, bool strict) {
  torch::NoGradGuard no_grad;
  std::map<std::string, const RawTensor*> by_name;
  for (const auto& t : file.tensors) by_name[t.name] = &t;
  auto copy_into = [&](const std::string& key, torch::Tensor& dst) {
    auto it = by_name.find(prefix + key);
    if (it == by_name.end()) {
      if (strict) throw ModelError(fmt::format("checkpoint has no tensor '{}{}'", prefix, key));
      return;
    }
    auto src = from_raw(*it->second);
    if (src.sizes() != dst.sizes()) {
      throw ModelError(fmt::format("checkpoint tensor '{}{}' has shape {}, the model expects {}", prefix, key,
                                   shape_str(src), shape_str(dst)));
    }
    dst.copy_(src.to(dst.scalar_type()));
  };
  for (auto& p : m.named_parameters(true)) copy_into(p.key(), p.value());
  for (auto& b : m.named_buffers(true)) copy_into(b.key(), b.value());
}

}  // namespace pcmoe::model
