// Owns the msgpack packing of fields and tensor descriptors (see field_writer.h). A tensor is
// described in the header as [dtype code, [dims...]]; its bytes become the next raw frame. An fp8
// tensor is [dtype code, [dims...], scale_block]: its codes, then its fp32 scales, two frames.
#include "proto/field_writer.h"

#include "common/error.h"

namespace pcmoe::proto {

std::string FieldWriter::finish() const {
  msgpack::sbuffer out;
  msgpack::packer<msgpack::sbuffer> pk(out);
  pk.pack_map(n_);
  out.write(body_.data(), body_.size());
  return std::string(out.data(), out.size());
}

void FieldWriter::real_matrix(const char* key, const std::vector<std::vector<double>>& xss, Real) {
  key_(key);
  pk_.pack_array(static_cast<uint32_t>(xss.size()));
  for (const auto& xs : xss) {
    pk_.pack_array(static_cast<uint32_t>(xs.size()));
    for (double x : xs) pk_.pack_double(x);
  }
}

void FieldWriter::strs(const char* key, const std::vector<std::string>& xs) {
  key_(key);
  pk_.pack_array(static_cast<uint32_t>(xs.size()));
  for (const auto& s : xs) pk_.pack(s);
}

void FieldWriter::pack_desc(const WireTensor& t) {
  auto want = tensor_bytes(t.dtype, t.shape);
  PCMOE_CHECK(want && *want == t.data.size, "cannot encode tensor {}: {} data bytes, shape needs {}",
              describe_tensor(t), t.data.size, want ? *want : 0);
  PCMOE_CHECK(t.data.size == 0 || t.data.data != nullptr, "cannot encode tensor {}: no data",
              describe_tensor(t));
  const bool fp8 = dtype_is_fp8(t.dtype);
  if (fp8) {
    PCMOE_CHECK(t.scale_block > 0 && !t.shape.empty() && t.shape.back() % t.scale_block == 0 &&
                    t.scales.size == *want / t.scale_block * sizeof(float),
                "cannot encode fp8 tensor {}: {} scale bytes", describe_tensor(t), t.scales.size);
  }
  pk_.pack_array(fp8 ? 3 : 2);
  pk_.pack_uint64(static_cast<uint64_t>(t.dtype));
  pk_.pack_array(static_cast<uint32_t>(t.shape.size()));
  for (int64_t d : t.shape) pk_.pack_int64(d);
  frames_.push_back(t.data);
  if (fp8) {  // protocol 1.1: [dtype, shape, scale_block]; the scales are the next frame
    pk_.pack_uint64(t.scale_block);
    frames_.push_back(t.scales);
  }
}

void FieldWriter::tensor(const char* key, const WireTensor& t, TensorRole) {
  key_(key);
  pack_desc(t);
}

void FieldWriter::tensors(const char* key, const std::vector<WireTensor>& ts, TensorRole) {
  key_(key);
  pk_.pack_array(static_cast<uint32_t>(ts.size()));
  for (const auto& t : ts) pack_desc(t);
}

}  // namespace pcmoe::proto
