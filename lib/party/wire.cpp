// torch <-> wire tensors (see wire.h).
#include "party/wire.h"

#include "common/error.h"
#include "model/tensor_io.h"
#include "proto/wire_tensor.h"

namespace pcmoe::party {

proto::WireTensor to_wire(const torch::Tensor& t, DType wire) {
  std::shared_ptr<torch::Tensor> cpu;
  if (t.is_cuda()) {
    // Cast on the device (fewer bytes to move), then one copy into pinned host memory (from
    // libtorch's caching host allocator), which the network layer sends without another copy.
    auto src = t.detach().to(model::to_scalar_type(wire)).contiguous();
    cpu = std::make_shared<torch::Tensor>(
        torch::empty(src.sizes(), torch::TensorOptions().dtype(src.scalar_type()).pinned_memory(true)));
    cpu->copy_(src);
  } else {
    cpu = std::make_shared<torch::Tensor>(t.detach().to(model::to_scalar_type(wire)).contiguous());
  }
  const size_t bytes = static_cast<size_t>(cpu->numel()) * cpu->element_size();
  const void* data = cpu->data_ptr();
  return proto::wrap_tensor(wire, cpu->sizes().vec(), std::shared_ptr<const void>(cpu, data), data, bytes);
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
