// torch <-> wire tensors (see wire.h).
#include "party/wire.h"

#include <fmt/format.h>

#include <cstring>

#include "common/error.h"
#include "model/tensor_io.h"
#include "proto/wire_tensor.h"

namespace pcmoe::party {

torch::Tensor host_copy(const torch::Tensor& t, DType wire) {
  if (t.is_cuda()) {
    // Cast on the device (fewer bytes to move), then one copy into pinned host memory (from
    // libtorch's caching host allocator), which the network layer sends without another copy.
    auto src = t.detach().to(model::to_scalar_type(wire)).contiguous();
    auto cpu = torch::empty(src.sizes(), torch::TensorOptions().dtype(src.scalar_type()).pinned_memory(true));
    cpu.copy_(src);
    return cpu;
  }
  return t.detach().to(model::to_scalar_type(wire)).contiguous();
}

namespace {

proto::WireTensor wrap_host(torch::Tensor host) {
  auto owner = std::make_shared<torch::Tensor>(std::move(host));
  const size_t bytes = static_cast<size_t>(owner->numel()) * owner->element_size();
  const void* data = owner->data_ptr();
  return proto::wrap_tensor(model::to_dtype(owner->scalar_type()), owner->sizes().vec(),
                            std::shared_ptr<const void>(owner, data), data, bytes);
}

}  // namespace

proto::WireTensor wrap_rows(const torch::Tensor& host, int64_t first, int64_t n) {
  return wrap_host(host.narrow(0, first, n));
}

proto::WireTensor to_wire(const torch::Tensor& t, DType wire) { return wrap_host(host_copy(t, wire)); }

ReplyStager::ReplyStager(int64_t rows, int64_t width, const torch::Device& device, torch::ScalarType dtype)
    : rows_(rows), width_(width), device_(device), dtype_(dtype) {}

void ReplyStager::add(const proto::WireTensor& w) {
  const int64_t n = w.shape.empty() ? 0 : w.shape[0];
  PCMOE_CHECK(w.shape.size() == 2 && w.shape[1] == width_ && filled_ + n <= rows_,
              "reply {} does not fit the remaining {} of {} rows x {}", proto::describe_tensor(w),
              rows_ - filled_, rows_, width_);
  if (!mixed_ && (!staged_.defined() || w.dtype == wire_)) {
    if (!staged_.defined()) {
      wire_ = w.dtype;
      // Pinned staging makes the one host-to-device copy asynchronous; the caching host
      // allocator keeps the block until that copy has run.
      staged_ = torch::empty(
          {rows_, width_},
          torch::TensorOptions().dtype(model::to_scalar_type(wire_)).pinned_memory(device_.is_cuda()));
    }
    std::memcpy(static_cast<uint8_t*>(staged_.data_ptr()) + filled_ * width_ * staged_.element_size(),
                w.data.data, w.data.size);
    filled_ += n;
    return;
  }
  if (!mixed_) {
    mixed_ = true;
    if (filled_ > 0) parts_.push_back(to_device(staged_.narrow(0, 0, filled_)));
  }
  parts_.push_back(from_wire(w, device_, dtype_));
  filled_ += n;
}

torch::Tensor ReplyStager::to_device(const torch::Tensor& host) const {
  if (device_.is_cuda()) return host.to(device_, /*non_blocking=*/true).to(dtype_);
  return host.to(dtype_);  // staging is this object's own buffer: never aliases the network's
}

torch::Tensor ReplyStager::finish() {
  PCMOE_CHECK(filled_ == rows_, "replies hold {} of {} rows", filled_, rows_);
  if (mixed_) return parts_.size() == 1 ? parts_[0] : torch::cat(parts_, 0);
  if (!staged_.defined())
    return torch::empty({0, width_}, torch::TensorOptions().dtype(dtype_).device(device_));
  return to_device(staged_);
}

torch::Tensor from_wire(const proto::WireTensor& w, const torch::Device& device, torch::ScalarType dtype) {
  auto owner = w.data.owner;
  auto view = torch::from_blob(
      const_cast<uint8_t*>(w.data.data), w.shape, [owner](void*) {},
      torch::TensorOptions().dtype(model::to_scalar_type(w.dtype)));
  // .to() copies when the device or dtype changes; clone() otherwise, so the result never aliases
  // the network buffer.
  if (device.is_cuda()) {
    // Stage in pinned memory so the host-to-device copy is asynchronous; the caching host
    // allocator keeps the staging block until the copy has run.
    auto staged = torch::empty(view.sizes(), view.options().pinned_memory(true));
    staged.copy_(view);
    return staged.to(device, /*non_blocking=*/true).to(dtype);
  }
  auto out = view.to(device, dtype);
  if (out.data_ptr() == view.data_ptr()) out = out.clone();
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
  auto d = parse_dtype(name);
  PCMOE_CHECK_T(ConfigError, d && (*d == DType::f32 || *d == DType::bf16 || *d == DType::f16),
                "wire dtype '{}' is not one of fp32, bf16, fp16", name);
  return *d;
}

}  // namespace pcmoe::party
