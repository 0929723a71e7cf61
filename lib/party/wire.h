// Owns conversions between torch tensors and wire tensors for the expert protocol: rows and
// gradients leave in the wire dtype (fp32, bf16, fp16, or fp8 codes with one scale per row) as
// contiguous CPU bytes whose storage the Blob keeps alive (no extra copy), and arrive as tensors
// on the compute device. fp8 is quantized and dequantized on the compute device: by one CUDA
// kernel each where the build has them (model/fp8_cuda.h), else as libtorch operations where
// libtorch has float8 types (2.1 and later), else on the CPU (common/fp8.h): the same arithmetic
// every way (scale = max |x| of the row / largest finite, codes rounded to nearest even, saturating).
#pragma once

#include <torch/torch.h>

#include <atomic>
#include <mutex>
#include <vector>

#include "common/dtype.h"
#include "proto/messages.h"

namespace pcmoe::party {

// Rows in their wire form on the host (pinned when they came from CUDA): values, or fp8 codes
// (uint8) with one fp32 scale per row. Slices go out as wire tensors without another copy.
struct HostRows {
  DType dtype = DType::f32;
  torch::Tensor data;    // [R, d] values or codes
  torch::Tensor scales;  // fp8 only: [R] fp32
  // Rows [first, first + n) as a wire tensor sharing this memory.
  proto::WireTensor wrap(int64_t first, int64_t n) const;
  int64_t rows() const { return data.defined() ? data.size(0) : 0; }
};

// `t` ([R, d], any device) in the wire dtype on the host: cast (or quantized) on t's device, then
// one device-to-host copy (per tensor) into pinned memory when t is on CUDA.
HostRows host_copy(const torch::Tensor& t, DType wire);
// host_copy() without waiting for the device: on CUDA the copies into pinned memory are queued on
// the current stream, and the memory may be read (or sent) once the stream has passed them (an
// event after them, or a synchronisation). On the CPU, host_copy().
HostRows host_copy_async(const torch::Tensor& t, DType wire);
// `t` in pinned host memory, queued like host_copy_async (CUDA); t itself on the CPU.
torch::Tensor to_host_async(const torch::Tensor& t);
// Rows [first, first + n) of host_copy's result, as a wire tensor sharing its memory.
inline proto::WireTensor wrap_rows(const HostRows& host, int64_t first, int64_t n) {
  return host.wrap(first, n);
}
// `t` converted to `wire` dtype on the CPU, contiguous; the WireTensor shares its storage.
proto::WireTensor to_wire(const torch::Tensor& t, DType wire);
// A received wire tensor in host memory: copied into pinned memory when bound for CUDA (so the
// copy to the device is asynchronous), else views of the frames (no copy).
struct Staged {
  DType dtype = DType::f32;
  int64_t block = 0;     // fp8: elements per scale
  torch::Tensor data;    // values, or fp8 codes (uint8)
  torch::Tensor scales;  // fp8: [R, d / block] fp32
};
Staged stage(const proto::WireTensor& w, const torch::Device& device);
// The staged values on `device` as `dtype` (fp8 dequantized there); never aliases a frame.
torch::Tensor to_device(const Staged& s, const torch::Device& device, torch::ScalarType dtype);
// stage() then to_device(): a tensor on `device` with dtype `dtype` holding the wire tensor's
// values (fp8 codes dequantized with their scales).
torch::Tensor from_wire(const proto::WireTensor& w, const torch::Device& device, torch::ScalarType dtype);
// NaN or Inf in a wire tensor's values (fp8: codes or scales).
bool wire_not_finite(const proto::WireTensor& w);
// Whether every value of `t` stays finite in the `wire` dtype (fp16 overflows above 65504): a 0-dim
// bool tensor, computed on t's device and queued into host memory like to_host_async (read it
// once the device has passed it). Undefined for fp8: quantization already gives a row with NaN or
// Inf a NaN scale, so rows_finite reads that instead (one reduction and copy fewer).
torch::Tensor finite_flag(const torch::Tensor& t, DType wire);
// Once the device has passed host_copy_async: whether `rows` are finite in their wire dtype, from
// `flag` (finite_flag's result in host memory) or, where it is undefined (fp8), from their scales.
bool rows_finite(const torch::Tensor& flag, const HostRows& rows);

// Collects the 2-D replies of one remote call as they arrive, each at its place (`first` row):
// copied into one staging buffer (pinned when `device` is CUDA; fp8: codes and scales, one scale per
// row) allocated for the `wire` dtype the replies are expected in, while later replies are still on
// their way; then finish() makes one transfer to the device (and the fp8 dequantization there).
// Replies must have `width` columns and together `rows` rows (the caller checks shapes); one in
// another dtype is converted on its own. add() may be called from several threads at once for
// disjoint rows; finish() once, after every add() has returned.
class ReplyStager {
 public:
  ReplyStager(int64_t rows, int64_t width, const torch::Device& device, torch::ScalarType dtype, DType wire);
  void add(const proto::WireTensor& w, int64_t first);
  torch::Tensor finish();

 private:
  int64_t rows_, width_;
  torch::Device device_;
  torch::ScalarType dtype_;
  DType wire_;
  HostRows staged_;
  std::atomic<int64_t> filled_{0};
  std::mutex odd_mu_;
  std::vector<std::pair<int64_t, torch::Tensor>> odd_;  // (first row, on the device): other dtypes
};

torch::Tensor ids_from_wire(const proto::WireTensor& w, const torch::Device& device);
// Expert ids as int16 when they fit (< 32768), else int32.
proto::WireTensor ids_to_wire(const torch::Tensor& ids, int n_experts);

// "auto" -> bf16 on CUDA, fp32 on CPU; "fp8" -> fp8e4m3; otherwise the named dtype (fp32, bf16,
// fp16, fp8e4m3, fp8e5m2).
DType resolve_wire_dtype(const std::string& name, const torch::Device& device);

}  // namespace pcmoe::party
