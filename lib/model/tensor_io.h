// Owns conversions between torch tensors and pcmoe's raw tensors (tensor files, wire frames),
// and named-tensor checkpoint I/O for modules: every copy checks names, shapes and dtypes and
// throws ModelError naming the tensor.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "common/dtype.h"
#include "common/tensor_file.h"

namespace pcmoe::model {

DType to_dtype(torch::ScalarType t);  // throws ModelError for types without a code
torch::ScalarType to_scalar_type(DType d);
std::string shape_str(const torch::Tensor& t);  // "[2, 3]"

// A contiguous CPU copy of `t` as a RawTensor.
RawTensor to_raw(const std::string& name, const torch::Tensor& t);
// A CPU tensor owning a copy of the raw bytes.
torch::Tensor from_raw(const RawTensor& raw);
// A CPU tensor copying `bytes` interpreted as dtype/shape (caller validated the size).
torch::Tensor tensor_from_bytes(DType dtype, const std::vector<int64_t>& shape, const void* bytes);

using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

// Parameters and buffers of a module under `prefix` ("backbone.tok_emb", ...).
NamedTensors module_state(const torch::nn::Module& m, const std::string& prefix);
// Copies tensors named prefix+<param/buffer name> from `file` into the module. With `strict`,
// every parameter and buffer must be present. Throws ModelError on a missing or mis-shaped tensor.
void load_module_state(torch::nn::Module& m, const TensorFile& file, const std::string& prefix,
                       bool strict = true);

// Finds a tensor in `file` by name and returns it as a CPU tensor (undefined if absent).
torch::Tensor find_tensor(const TensorFile& file, const std::string& name);

}  // namespace pcmoe::model
