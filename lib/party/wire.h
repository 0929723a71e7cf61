// Owns conversions between torch tensors and wire tensors for the expert protocol: rows and
// gradients leave in the wire dtype (fp32, bf16, fp16) as contiguous CPU bytes whose storage the
// Blob keeps alive (no extra copy), and arrive as tensors on the compute device.
#pragma once

#include <torch/torch.h>

#include <vector>

#include "common/dtype.h"
#include "proto/messages.h"

namespace pcmoe::party {

// `t` converted to `wire` dtype on the CPU, contiguous; the WireTensor shares its storage.
proto::WireTensor to_wire(const torch::Tensor& t, DType wire);
// A tensor on `device` with dtype `dtype` holding the wire tensor's values (one copy).
torch::Tensor from_wire(const proto::WireTensor& w, const torch::Device& device, torch::ScalarType dtype);

// `t` on the host in the wire dtype, contiguous: one device-to-host copy into pinned memory when
// t is on CUDA. Slices of it go out as wire tensors with wrap_rows, without another copy.
torch::Tensor host_copy(const torch::Tensor& t, DType wire);
// Rows [first, first + n) of a host tensor from host_copy, as a wire tensor sharing its memory.
proto::WireTensor wrap_rows(const torch::Tensor& host, int64_t first, int64_t n);
// Collects the 2-D replies of one remote call, in order, as they arrive: each is copied into one
// staging buffer (pinned when `device` is CUDA) while later replies are still on their way, then
// finish() makes one transfer to the device. Replies must have `width` columns and together
// `rows` rows (the caller checks shapes); one whose dtype differs from the first's is converted
// on its own.
class ReplyStager {
 public:
  ReplyStager(int64_t rows, int64_t width, const torch::Device& device, torch::ScalarType dtype);
  void add(const proto::WireTensor& w);
  torch::Tensor finish();

 private:
  torch::Tensor to_device(const torch::Tensor& host) const;
  int64_t rows_, width_;
  torch::Device device_;
  torch::ScalarType dtype_;
  DType wire_ = DType::f32;
  torch::Tensor staged_;
  int64_t filled_ = 0;
  bool mixed_ = false;
  std::vector<torch::Tensor> parts_;  // on the device, once dtypes were mixed
};

torch::Tensor ids_from_wire(const proto::WireTensor& w, const torch::Device& device);
// Expert ids as int16 when they fit (< 32768), else int32.
proto::WireTensor ids_to_wire(const torch::Tensor& ids, int n_experts);

// "auto" -> bf16 on CUDA, fp32 on CPU; otherwise the named dtype.
DType resolve_wire_dtype(const std::string& name, const torch::Device& device);

}  // namespace pcmoe::party
