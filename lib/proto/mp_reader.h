// Owns a bounded, allocation-free msgpack reader over one header frame. It never reads past the
// buffer, never trusts a declared length (a count is checked against the bytes left before the
// caller can reserve anything) and never recurses deeper than a fixed depth.
// Failures throw DecodeError: `malformed` for bytes that are not msgpack (truncated, reserved
// byte 0xc1, too deep), `bad_field` naming the field for a value of the wrong type or range.
// Not thread-safe (a cursor); the buffer must outlive the reader.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "proto/decode_error.h"

namespace pcmoe::proto {

enum class MpKind : uint8_t { nil, boolean, uint, sint, float32, float64, str, bin, array, map, ext };
std::string_view mp_kind_name(MpKind k);

class MpReader {
 public:
  static constexpr int kMaxDepth = 16;

  MpReader(const uint8_t* data, size_t size) : p_(data), size_(size) {}

  size_t offset() const { return off_; }
  size_t remaining() const { return size_ - off_; }
  bool at_end() const { return off_ == size_; }
  void seek(size_t offset);  // offset <= size (else malformed)

  // Kind of the next value; malformed at the end of the buffer or on the reserved byte 0xc1.
  MpKind peek() const;

  // Typed reads. `what` names the field in error messages. Containers return their element
  // count, already checked against the bytes left (each element needs at least one byte).
  uint32_t read_map(std::string_view what);
  uint32_t read_array(std::string_view what);
  std::string_view read_str(std::string_view what);
  bool read_bool(std::string_view what);
  uint64_t read_uint(std::string_view what);  // any non-negative integer, of any width
  int64_t read_int(std::string_view what);    // any integer that fits int64
  double read_double(std::string_view what);  // float32, float64 or an integer
  // Skips one value of any kind (nested up to kMaxDepth).
  void skip(std::string_view what) { skip_(what, 0); }

 private:
  [[noreturn]] void truncated(std::string_view what) const;
  [[noreturn]] void wrong_type(std::string_view what, std::string_view expected) const;
  const uint8_t* need(size_t n, std::string_view what);
  uint64_t be(size_t n, std::string_view what);  // big-endian unsigned of n bytes
  uint32_t container(std::string_view what, bool is_map);
  void skip_(std::string_view what, int depth);

  const uint8_t* p_;
  size_t size_;
  size_t off_ = 0;
};

}  // namespace pcmoe::proto
