// Owns the rules for tensors on the wire: building a WireTensor over a contiguous buffer, the
// per-role dtype/shape checks the decoder applies, and the fast NaN/Inf scan (bit patterns of
// fp32, bf16, fp16 and fp64; no float arithmetic, unaligned data is fine).
// Stateless functions; thread-safe. Checks throw DecodeError naming the field.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proto/decode_error.h"
#include "proto/messages.h"

namespace pcmoe::proto {

constexpr size_t kMaxTensorDims = 8;

// What a tensor is for decides which dtypes and shapes are allowed.
enum class TensorRole : uint8_t {
  activations,  // rows / outputs / grads: [rows, d_model], fp32 | bf16 | fp16 | fp8 with scales, finite
  expert_ids,   // [rows], int16 | int32, values >= 0
  parameters,   // snapshot / pool tensors: any shape (<= 8 dims), fp32 | bf16 | fp16 | fp64, finite
};

// Copies `bytes` bytes into a new tensor (the bytes must be numel(shape) * dtype_size(dtype)).
WireTensor make_tensor(DType dtype, std::vector<int64_t> shape, const void* data, size_t bytes);
// Wraps bytes kept alive by `owner` without copying (e.g. a torch tensor's storage).
WireTensor wrap_tensor(DType dtype, std::vector<int64_t> shape, std::shared_ptr<const void> owner,
                       const void* data, size_t bytes);
// An fp8 tensor from codes and scales kept alive by their owners (see WireTensor).
WireTensor wrap_fp8(DType dtype, std::vector<int64_t> shape, uint32_t scale_block, Blob data, Blob scales);
// Convenience for tests and small messages: fp32 / int32 values copied in.
WireTensor make_f32(std::vector<int64_t> shape, const std::vector<float>& values);
WireTensor make_i32(std::vector<int64_t> shape, const std::vector<int32_t>& values);

// Bytes the tensor's data must have; nullopt if a dim is negative or the product overflows.
std::optional<uint64_t> tensor_bytes(DType dtype, const std::vector<int64_t>& shape);

// Index of the first NaN or Inf element of a float tensor's bytes (fp8 codes included), nullopt if
// all are finite (or the dtype is not a float type). `n_bytes` is a multiple of the element size.
std::optional<size_t> first_non_finite(DType dtype, const uint8_t* data, size_t n_bytes);
// Index of the first fp8 scale (fp32 bytes) that is not finite, > 0 and normal (a subnormal or zero
// scale would turn every code into 0, an Inf one into Inf or NaN); nullopt if all are good.
std::optional<size_t> first_bad_scale(const uint8_t* data, size_t n_bytes);
// Index of the first negative element of an int16/int32 tensor, nullopt if none.
std::optional<size_t> first_negative(DType dtype, const uint8_t* data, size_t n_bytes);

// Checks a decoded tensor (dtype, shape, bytes already consistent) against its role and the limits:
// bad_dtype, bad_shape, too_large, non_finite or bad_field (negative expert id; an fp8 scale that
// is not finite and > 0).
void check_tensor(std::string_view field, const WireTensor& t, TensorRole role, const Limits& limits);

std::string describe_tensor(const WireTensor& t);  // e.g. "bf16[128,512]", "fp8e4m3[128,512]/512"

}  // namespace pcmoe::proto
