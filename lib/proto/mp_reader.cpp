// Owns the msgpack byte-level decoding (see mp_reader.h). Spec: github.com/msgpack/msgpack/spec.md.
#include "proto/mp_reader.h"

#include <fmt/format.h>

#include <cstring>

namespace pcmoe::proto {

std::string_view mp_kind_name(MpKind k) {
  switch (k) {
    case MpKind::nil:
      return "nil";
    case MpKind::boolean:
      return "bool";
    case MpKind::uint:
      return "uint";
    case MpKind::sint:
      return "int";
    case MpKind::float32:
      return "float32";
    case MpKind::float64:
      return "float64";
    case MpKind::str:
      return "str";
    case MpKind::bin:
      return "bin";
    case MpKind::array:
      return "array";
    case MpKind::map:
      return "map";
    case MpKind::ext:
      return "ext";
  }
  return "?";
}

void MpReader::seek(size_t offset) {
  if (offset > size_) truncated("seek");
  off_ = offset;
}

void MpReader::truncated(std::string_view what) const {
  throw DecodeError(ErrorCode::malformed,
                    fmt::format("header truncated or not msgpack at byte {} (field '{}')", off_, what));
}

void MpReader::wrong_type(std::string_view what, std::string_view expected) const {
  throw DecodeError(ErrorCode::bad_field,
                    fmt::format("field '{}': expected {}, found {}", what, expected, mp_kind_name(peek())));
}

const uint8_t* MpReader::need(size_t n, std::string_view what) {
  if (n > size_ - off_) truncated(what);
  const uint8_t* q = p_ + off_;
  off_ += n;
  return q;
}

uint64_t MpReader::be(size_t n, std::string_view what) {
  const uint8_t* q = need(n, what);
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) v = (v << 8) | q[i];
  return v;
}

MpKind MpReader::peek() const {
  if (off_ >= size_) throw DecodeError(ErrorCode::malformed, "header ends where a value was expected");
  uint8_t b = p_[off_];
  if (b <= 0x7f) return MpKind::uint;
  if (b <= 0x8f) return MpKind::map;
  if (b <= 0x9f) return MpKind::array;
  if (b <= 0xbf) return MpKind::str;
  if (b >= 0xe0) return MpKind::sint;
  switch (b) {
    case 0xc0:
      return MpKind::nil;
    case 0xc2:
    case 0xc3:
      return MpKind::boolean;
    case 0xc4:
    case 0xc5:
    case 0xc6:
      return MpKind::bin;
    case 0xc7:
    case 0xc8:
    case 0xc9:
      return MpKind::ext;
    case 0xca:
      return MpKind::float32;
    case 0xcb:
      return MpKind::float64;
    case 0xcc:
    case 0xcd:
    case 0xce:
    case 0xcf:
      return MpKind::uint;
    case 0xd0:
    case 0xd1:
    case 0xd2:
    case 0xd3:
      return MpKind::sint;
    case 0xd4:
    case 0xd5:
    case 0xd6:
    case 0xd7:
    case 0xd8:
      return MpKind::ext;
    case 0xd9:
    case 0xda:
    case 0xdb:
      return MpKind::str;
    case 0xdc:
    case 0xdd:
      return MpKind::array;
    case 0xde:
    case 0xdf:
      return MpKind::map;
    default:
      break;  // 0xc1: never used
  }
  throw DecodeError(ErrorCode::malformed, fmt::format("reserved msgpack byte 0xc1 at byte {}", off_));
}

uint32_t MpReader::container(std::string_view what, bool is_map) {
  uint8_t b = p_[off_];
  uint64_t n = 0;
  if ((b & 0xf0) == (is_map ? 0x80 : 0x90)) {
    need(1, what);
    n = b & 0x0f;
  } else {
    need(1, what);
    n = be(b == 0xdc || b == 0xde ? 2 : 4, what);
  }
  // Every element takes at least one byte (a map entry two): a count beyond that is a lie.
  uint64_t min_bytes = is_map ? 2 * n : n;
  if (min_bytes > remaining()) {
    throw DecodeError(ErrorCode::malformed,
                      fmt::format("field '{}': {} declares {} elements but only {} bytes remain", what,
                                  is_map ? "map" : "array", n, remaining()));
  }
  return static_cast<uint32_t>(n);
}

uint32_t MpReader::read_map(std::string_view what) {
  if (peek() != MpKind::map) wrong_type(what, "map");
  return container(what, true);
}

uint32_t MpReader::read_array(std::string_view what) {
  if (peek() != MpKind::array) wrong_type(what, "array");
  return container(what, false);
}

std::string_view MpReader::read_str(std::string_view what) {
  if (peek() != MpKind::str) wrong_type(what, "str");
  uint8_t b = *need(1, what);
  uint64_t n = b <= 0xbf ? (b & 0x1f) : be(b == 0xd9 ? 1 : b == 0xda ? 2 : 4, what);
  const uint8_t* q = need(static_cast<size_t>(n), what);
  return std::string_view(reinterpret_cast<const char*>(q), static_cast<size_t>(n));
}

bool MpReader::read_bool(std::string_view what) {
  if (peek() != MpKind::boolean) wrong_type(what, "bool");
  return *need(1, what) == 0xc3;
}

uint64_t MpReader::read_uint(std::string_view what) {
  MpKind k = peek();
  if (k == MpKind::sint) {
    int64_t v = read_int(what);
    if (v < 0) {
      throw DecodeError(ErrorCode::bad_field, fmt::format("field '{}': must be >= 0, found {}", what, v));
    }
    return static_cast<uint64_t>(v);
  }
  if (k != MpKind::uint) wrong_type(what, "uint");
  uint8_t b = *need(1, what);
  if (b <= 0x7f) return b;
  return be(size_t(1) << (b - 0xcc), what);
}

int64_t MpReader::read_int(std::string_view what) {
  MpKind k = peek();
  if (k == MpKind::uint) {
    uint64_t u = read_uint(what);
    if (u > static_cast<uint64_t>(INT64_MAX)) {
      throw DecodeError(ErrorCode::bad_field, fmt::format("field '{}': {} does not fit int64", what, u));
    }
    return static_cast<int64_t>(u);
  }
  if (k != MpKind::sint) wrong_type(what, "int");
  uint8_t b = *need(1, what);
  if (b >= 0xe0) return static_cast<int8_t>(b);
  size_t n = size_t(1) << (b - 0xd0);
  uint64_t u = be(n, what);
  if (n < 8) {  // sign-extend
    uint64_t sign = uint64_t(1) << (8 * n - 1);
    u = (u ^ sign) - sign;
  }
  return static_cast<int64_t>(u);
}

double MpReader::read_double(std::string_view what) {
  MpKind k = peek();
  if (k == MpKind::uint) return static_cast<double>(read_uint(what));
  if (k == MpKind::sint) return static_cast<double>(read_int(what));
  if (k != MpKind::float32 && k != MpKind::float64) wrong_type(what, "float");
  need(1, what);
  if (k == MpKind::float32) {
    uint32_t bits = static_cast<uint32_t>(be(4, what));
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
  }
  uint64_t bits = be(8, what);
  double d;
  std::memcpy(&d, &bits, 8);
  return d;
}

void MpReader::skip_(std::string_view what, int depth) {
  if (depth > kMaxDepth) {
    throw DecodeError(ErrorCode::malformed,
                      fmt::format("field '{}': nested deeper than {}", what, kMaxDepth));
  }
  MpKind k = peek();
  uint8_t b = p_[off_];
  switch (k) {
    case MpKind::nil:
    case MpKind::boolean:
      need(1, what);
      return;
    case MpKind::uint:
      read_uint(what);
      return;
    case MpKind::sint:
      read_int(what);
      return;
    case MpKind::float32:
    case MpKind::float64:
      read_double(what);
      return;
    case MpKind::str:
      read_str(what);
      return;
    case MpKind::bin: {
      need(1, what);
      need(static_cast<size_t>(be(size_t(1) << (b - 0xc4), what)), what);
      return;
    }
    case MpKind::ext: {
      need(1, what);
      size_t n =
          b >= 0xd4 ? (size_t(1) << (b - 0xd4)) : static_cast<size_t>(be(size_t(1) << (b - 0xc7), what));
      need(1 + n, what);  // type byte + data
      return;
    }
    case MpKind::array:
    case MpKind::map: {
      uint32_t n = container(what, k == MpKind::map);
      uint64_t items = k == MpKind::map ? 2 * uint64_t(n) : n;
      for (uint64_t i = 0; i < items; ++i) skip_(what, depth + 1);
      return;
    }
  }
}

}  // namespace pcmoe::proto
