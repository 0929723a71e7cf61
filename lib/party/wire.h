// Owns conversions between torch tensors and wire tensors for the expert protocol: rows and
// gradients leave in the wire dtype (fp32, bf16, fp16) as contiguous CPU bytes whose storage the
// Blob keeps alive (no extra copy), and arrive as tensors on the compute device.
#pragma once

#include <torch/torch.h>

#include "common/dtype.h"
#include "proto/messages.h"

namespace pcmoe::party {

// `t` converted to `wire` dtype on the CPU, contiguous; the WireTensor shares its storage.
proto::WireTensor to_wire(const torch::Tensor& t, DType wire);
// A tensor on `device` with dtype `dtype` holding the wire tensor's values (one copy).
torch::Tensor from_wire(const proto::WireTensor& w, const torch::Device& device, torch::ScalarType dtype);
// Expert ids (int16/int32 on the wire) as an int64 tensor on `device`.
torch::Tensor ids_from_wire(const proto::WireTensor& w, const torch::Device& device);
// Expert ids as int16 when they fit (< 32768), else int32.
proto::WireTensor ids_to_wire(const torch::Tensor& ids, int n_experts);

// "auto" -> bf16 on CUDA, fp32 on CPU; otherwise the named dtype.
DType resolve_wire_dtype(const std::string& name, const torch::Device& device);

}  // namespace pcmoe::party
