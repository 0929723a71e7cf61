// Owns pcmoe's tensor container file (checkpoints, expert-pool snapshots, exported models):
// named raw tensors plus string metadata, with a checksum, written atomically. No libtorch, so the
// hub can read and write expert-pool snapshots. Format (little endian):
//   "PCMOETF1" | u64 header_bytes | header | padding to 64 | tensor data ... | u64 checksum
//   header = u32 n_meta {str key, str value}* u32 n_tensors {str name, u8 dtype, u8 ndim,
//            i64 dims[ndim], u64 offset, u64 nbytes}*      (str = u32 length + bytes)
// offsets are relative to the data start; checksum covers header and data.
// A reader rejects truncated, oversized or inconsistent files with DataError naming the path.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/dtype.h"

namespace pcmoe {

struct RawTensor {
  std::string name;
  DType dtype = DType::f32;
  std::vector<int64_t> shape;
  std::string bytes;  // numel * dtype_size bytes, row-major contiguous

  int64_t numel() const;
};

struct TensorFile {
  std::map<std::string, std::string> meta;
  std::vector<RawTensor> tensors;

  const RawTensor* find(const std::string& name) const;
  const std::string& meta_at(const std::string& key) const;  // throws DataError if missing
};

// Writes atomically (temp file, fsync, rename). Throws pcmoe::Error.
void write_tensor_file(const std::string& path, const TensorFile& file);
// Reads and verifies. Throws DataError naming the path and what is wrong.
TensorFile read_tensor_file(const std::string& path);

// In-memory variants (used by tests and for sending a file's contents).
std::string encode_tensor_file(const TensorFile& file);
TensorFile decode_tensor_file(const std::string& bytes, const std::string& what);

}  // namespace pcmoe
