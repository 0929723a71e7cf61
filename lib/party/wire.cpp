// torch <-> wire tensors (see wire.h).
#include "party/wire.h"

#include <fmt/format.h>

#include <cfloat>
#include <cstring>

#include "common/error.h"
#include "common/fp8.h"
#include "model/compat.h"
#include "model/fp8_cuda.h"
#include "model/tensor_io.h"
#include "proto/wire_tensor.h"

namespace pcmoe::party {
namespace {

Fp8Format fp8_format(DType d) { return d == DType::f8e4m3 ? Fp8Format::e4m3 : Fp8Format::e5m2; }

// The storage type of a wire dtype on the host (fp8 codes are bytes).
torch::ScalarType storage_type(DType d) { return dtype_is_fp8(d) ? torch::kUInt8 : model::to_scalar_type(d); }

// `src` in pinned host memory (libtorch's caching host allocator, which keeps a block until the
// copies queued on it have run). non_blocking (src on CUDA): the copy is queued on the current
// stream and the memory may be read once the stream has passed it.
torch::Tensor pinned_copy(const torch::Tensor& src, bool non_blocking = false) {
  auto cpu = torch::empty(src.sizes(), torch::TensorOptions().dtype(src.scalar_type()).pinned_memory(true));
  cpu.copy_(src, non_blocking);
  return cpu;
}

// Codes [R, d] (uint8) and scales [R] (fp32) of `t` [R, d], on t's device where this build has the
// fp8 kernels or libtorch has float8, else on the CPU. A row holding NaN or Inf gets a NaN scale (refused
// downstream).
std::pair<torch::Tensor, torch::Tensor> quantize(const torch::Tensor& t, DType d) {
  // One kernel where the build has them (model/fp8_cuda.h), the same codes and scales.
  if (t.is_cuda() && model::fp8_kernels_enabled()) return model::fp8_quantize_rows_cuda(t, fp8_format(d));
  auto x = t.detach().to(torch::kFloat32).contiguous();
  [[maybe_unused]] const double fmax = fp8_max(fp8_format(d));
#if PCMOE_TORCH_HAS_FLOAT8
  auto amax = x.abs().amax({1});
  // Tensor / tensor: a correctly rounded division on every device (a division by a scalar may be a
  // multiplication by its reciprocal), so the scales equal the CPU codec's bit for bit.
  auto scales = torch::where(amax > 0, (amax / torch::full_like(amax, fmax)).clamp_min(FLT_MIN),
                             torch::ones_like(amax));
  const auto f8 = d == DType::f8e4m3 ? at::kFloat8_e4m3fn : at::kFloat8_e5m2;
  auto codes = (x / scales.unsqueeze(1)).clamp(-fmax, fmax).to(f8).view(torch::kUInt8);
  scales = torch::where(torch::isfinite(amax), scales, torch::full_like(scales, NAN));
  return {codes, scales};
#else
  x = x.to(torch::kCPU);
  const int64_t rows = x.size(0), cols = x.size(1);
  auto codes = torch::empty({rows, cols}, torch::kUInt8);
  auto scales = torch::empty({rows}, torch::kFloat32);
  if (!fp8_quantize(x.data_ptr<float>(), rows, cols, cols, fp8_format(d), codes.data_ptr<uint8_t>(),
                    scales.data_ptr<float>())) {
    scales.fill_(NAN);
  }
  return {codes.to(t.device()), scales.to(t.device())};
#endif
}

// Values of codes [R, d] (uint8, any device) with scales [R, d / block] (fp32, same device).
torch::Tensor dequantize(const torch::Tensor& codes, const torch::Tensor& scales, DType d, int64_t block,
                         torch::ScalarType dtype) {
  if (codes.is_cuda() && model::fp8_kernels_enabled()) {
    return model::fp8_dequantize_cuda(codes, scales, block, fp8_format(d), dtype);
  }
  const int64_t rows = codes.size(0), cols = codes.size(1);
#if PCMOE_TORCH_HAS_FLOAT8
  const auto f8 = d == DType::f8e4m3 ? at::kFloat8_e4m3fn : at::kFloat8_e5m2;
  auto v = codes.view(f8).to(torch::kFloat32).view({rows, cols / block, block});
  return (v * scales.view({rows, cols / block, 1})).view({rows, cols}).to(dtype);
#else
  auto c = codes.to(torch::kCPU).contiguous();
  auto s = scales.to(torch::kCPU, torch::kFloat32).contiguous();
  auto out = torch::empty({rows, cols}, torch::kFloat32);
  fp8_dequantize(c.data_ptr<uint8_t>(), s.data_ptr<float>(), rows, cols, block, fp8_format(d),
                 out.data_ptr<float>());
  return out.to(codes.device(), dtype);
#endif
}

// A CPU view of a wire buffer (no copy; the owner is kept alive by the view).
torch::Tensor view_of(const proto::Blob& b, std::vector<int64_t> shape, torch::ScalarType t) {
  auto owner = b.owner;
  return torch::from_blob(
      const_cast<uint8_t*>(b.data), shape, [owner](void*) {}, torch::TensorOptions().dtype(t));
}

proto::Blob blob_of(torch::Tensor host) {
  auto owner = std::make_shared<torch::Tensor>(std::move(host));
  proto::Blob b;
  b.data = static_cast<const uint8_t*>(owner->data_ptr());
  b.size = static_cast<size_t>(owner->numel()) * owner->element_size();
  b.owner = std::shared_ptr<const void>(owner, owner->data_ptr());
  return b;
}

}  // namespace

namespace {

HostRows host_copy(const torch::Tensor& t, DType wire, bool non_blocking) {
  HostRows h;
  h.dtype = wire;
  if (dtype_is_fp8(wire)) {
    auto [codes, scales] = quantize(t, wire);
    h.data = t.is_cuda() ? pinned_copy(codes, non_blocking) : codes.contiguous();
    h.scales = t.is_cuda() ? pinned_copy(scales, non_blocking) : scales.contiguous();
    return h;
  }
  // Cast on the device (fewer bytes to move), then one copy into pinned host memory (from
  // libtorch's caching host allocator), which the network layer sends without another copy.
  auto src = t.detach().to(model::to_scalar_type(wire)).contiguous();
  h.data = t.is_cuda() ? pinned_copy(src, non_blocking) : src;
  return h;
}

}  // namespace

HostRows host_copy(const torch::Tensor& t, DType wire) { return host_copy(t, wire, false); }

HostRows host_copy_async(const torch::Tensor& t, DType wire) { return host_copy(t, wire, true); }

torch::Tensor to_host_async(const torch::Tensor& t) {
  return t.is_cuda() ? pinned_copy(t.detach(), /*non_blocking=*/true) : t.detach();
}

proto::WireTensor HostRows::wrap(int64_t first, int64_t n) const {
  auto rows = data.narrow(0, first, n);
  std::vector<int64_t> shape = rows.sizes().vec();
  if (dtype_is_fp8(dtype)) {
    return proto::wrap_fp8(dtype, shape, static_cast<uint32_t>(data.size(1)), blob_of(rows),
                           blob_of(scales.narrow(0, first, n)));
  }
  proto::Blob b = blob_of(rows);
  return proto::wrap_tensor(dtype, shape, b.owner, b.data, b.size);
}

proto::WireTensor to_wire(const torch::Tensor& t, DType wire) {
  if (dtype_is_fp8(wire)) {
    PCMOE_CHECK_T(ModelError, t.dim() == 2, "fp8 wire tensors are rows [R, d], not {}", model::shape_str(t));
    return host_copy(t, wire).wrap(0, t.size(0));
  }
  HostRows h = host_copy(t, wire);
  proto::Blob b = blob_of(h.data);
  return proto::wrap_tensor(wire, h.data.sizes().vec(), b.owner, b.data, b.size);
}

bool wire_not_finite(const proto::WireTensor& w) {
  if (proto::first_non_finite(w.dtype, w.data.data, w.data.size)) return true;
  return dtype_is_fp8(w.dtype) && proto::first_bad_scale(w.scales.data, w.scales.size).has_value();
}

Staged stage(const proto::WireTensor& w, const torch::Device& device) {
  Staged st;
  st.dtype = w.dtype;
  st.data = view_of(w.data, w.shape, storage_type(w.dtype));
  if (dtype_is_fp8(w.dtype)) {
    st.block = w.scale_block;
    st.scales = view_of(w.scales, {w.shape[0], w.shape[1] / st.block}, torch::kFloat32);
  }
  if (device.is_cuda()) {
    // The caching host allocator keeps a pinned block until the copy that reads it has run.
    st.data = pinned_copy(st.data);
    if (st.scales.defined()) st.scales = pinned_copy(st.scales);
  }
  return st;
}

torch::Tensor to_device(const Staged& st, const torch::Device& device, torch::ScalarType dtype) {
  const bool cuda = device.is_cuda();
  if (dtype_is_fp8(st.dtype)) {
    return dequantize(cuda ? st.data.to(device, true) : st.data,
                      cuda ? st.scales.to(device, true) : st.scales, st.dtype, st.block,
                      dtype);  // a new tensor: never aliases the frame
  }
  if (cuda) return st.data.to(device, /*non_blocking=*/true).to(dtype);
  // .to() copies when the dtype changes; clone() otherwise, so the result never aliases the frame.
  auto out = st.data.to(dtype);
  if (out.data_ptr() == st.data.data_ptr()) out = out.clone();
  return out;
}

torch::Tensor finite_flag(const torch::Tensor& t, DType wire) {
  if (dtype_is_fp8(wire)) return {};  // the scales say it (rows_finite)
  auto v = wire == DType::f16 ? t.detach().to(torch::kHalf) : t.detach();
  return to_host_async(torch::isfinite(v).all());
}

bool rows_finite(const torch::Tensor& flag, const HostRows& rows) {
  if (flag.defined()) return flag.item<bool>();
  if (!dtype_is_fp8(rows.dtype) || rows.rows() == 0) return true;
  auto s = rows.scales.contiguous();
  return !proto::first_bad_scale(static_cast<const uint8_t*>(s.data_ptr()), s.numel() * sizeof(float));
}

torch::Tensor from_wire(const proto::WireTensor& w, const torch::Device& device, torch::ScalarType dtype) {
  return to_device(stage(w, device), device, dtype);
}

// ---- ReplyStager ----

ReplyStager::ReplyStager(int64_t rows, int64_t width, const torch::Device& device, torch::ScalarType dtype,
                         DType wire)
    : rows_(rows), width_(width), device_(device), dtype_(dtype), wire_(wire) {
  // Pinned staging makes the host-to-device copy asynchronous; the caching host allocator keeps
  // the block until that copy has run.
  const auto opts = torch::TensorOptions().pinned_memory(device_.is_cuda());
  staged_.dtype = wire;
  staged_.data = torch::empty({rows_, width_}, opts.dtype(storage_type(wire)));
  if (dtype_is_fp8(wire)) staged_.scales = torch::empty({rows_}, opts.dtype(torch::kFloat32));
}

void ReplyStager::add(const proto::WireTensor& w, int64_t first) {
  const int64_t n = w.shape.empty() ? 0 : w.shape[0];
  PCMOE_CHECK(w.shape.size() == 2 && w.shape[1] == width_ && first >= 0 && first + n <= rows_,
              "reply {} does not fit rows [{}, {}) of {} x {}", proto::describe_tensor(w), first, first + n,
              rows_, width_);
  const bool same = w.dtype == wire_ && (!dtype_is_fp8(w.dtype) || w.scale_block == width_);
  if (!same) {  // another dtype (or fp8 block) than expected: converted on its own
    auto part = from_wire(w, device_, dtype_);
    std::lock_guard<std::mutex> lock(odd_mu_);
    odd_.emplace_back(first, std::move(part));
  } else {
    auto* dst = static_cast<uint8_t*>(staged_.data.data_ptr()) + first * width_ * staged_.data.element_size();
    std::memcpy(dst, w.data.data, w.data.size);
    if (dtype_is_fp8(w.dtype))
      std::memcpy(staged_.scales.data_ptr<float>() + first, w.scales.data, w.scales.size);
  }
  filled_ += n;
}

torch::Tensor ReplyStager::finish() {
  PCMOE_CHECK(filled_ == rows_, "replies hold {} of {} rows", filled_.load(), rows_);
  if (rows_ == 0) return torch::empty({0, width_}, torch::TensorOptions().dtype(dtype_).device(device_));
  torch::Tensor out;
  const bool cuda = device_.is_cuda();
  if (dtype_is_fp8(wire_)) {
    out = dequantize(cuda ? staged_.data.to(device_, true) : staged_.data,
                     cuda ? staged_.scales.to(device_, true) : staged_.scales, wire_, width_, dtype_);
  } else {
    // The staging is this object's own buffer (never the network's), so it may be the result.
    out = cuda ? staged_.data.to(device_, true).to(dtype_) : staged_.data.to(dtype_);
  }
  for (auto& [first, part] : odd_) out.narrow(0, first, part.size(0)).copy_(part);
  return out;
}

torch::Tensor ids_from_wire(const proto::WireTensor& w, const torch::Device& device) {
  return from_wire(w, device, torch::kLong);
}

proto::WireTensor ids_to_wire(const torch::Tensor& ids, int n_experts) {
  return to_wire(ids, n_experts < 32768 ? DType::i16 : DType::i32);
}

DType resolve_wire_dtype(const std::string& name, const torch::Device& device) {
  if (name == "auto") return device.is_cuda() ? DType::bf16 : DType::f32;
  if (name == "fp8") return DType::f8e4m3;
  auto d = parse_dtype(name);
  PCMOE_CHECK_T(ConfigError,
                d && (*d == DType::f32 || *d == DType::bf16 || *d == DType::f16 || dtype_is_fp8(*d)),
                "wire dtype '{}' is not one of fp32, bf16, fp16, fp8, fp8e4m3, fp8e5m2", name);
  return *d;
}

}  // namespace pcmoe::party
