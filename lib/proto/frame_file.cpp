// Owns the frame-file container (see frame_file.h).
#include "proto/frame_file.h"

#include <fmt/format.h>

#include "common/error.h"
#include "common/fs.h"

namespace pcmoe::proto {
namespace {

void put_u32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint32_t get_u32(std::string_view in, size_t& off) {
  if (in.size() - off < 4) throw DataError(fmt::format("frame file truncated at byte {}", off));
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(static_cast<uint8_t>(in[off + i])) << (8 * i);
  off += 4;
  return v;
}

}  // namespace

std::string frames_to_bytes(const std::vector<Blob>& frames) {
  std::string out;
  PCMOE_CHECK(frames.size() <= UINT32_MAX, "too many frames: {}", frames.size());
  put_u32(out, static_cast<uint32_t>(frames.size()));
  for (const Blob& f : frames) {
    PCMOE_CHECK(f.size <= UINT32_MAX, "frame of {} bytes does not fit a frame file", f.size);
    put_u32(out, static_cast<uint32_t>(f.size));
    out.append(reinterpret_cast<const char*>(f.data), f.size);
  }
  return out;
}

std::vector<Blob> frames_from_bytes(std::string_view bytes) {
  size_t off = 0;
  uint32_t n = get_u32(bytes, off);
  if (n > (bytes.size() - off) / 4) {
    throw DataError(fmt::format("frame file declares {} frames, too many", n));
  }
  std::vector<Blob> frames;
  frames.reserve(n);
  for (uint32_t i = 0; i < n; ++i) {
    uint32_t len = get_u32(bytes, off);
    if (bytes.size() - off < len) throw DataError(fmt::format("frame file: frame {} truncated", i));
    frames.push_back(Blob::copy_of(bytes.data() + off, len));
    off += len;
  }
  if (off != bytes.size()) throw DataError(fmt::format("frame file: {} trailing bytes", bytes.size() - off));
  return frames;
}

void write_frame_file(const std::string& path, const std::vector<Blob>& frames) {
  fs::atomic_write(path, frames_to_bytes(frames));
}

std::vector<Blob> read_frame_file(const std::string& path) {
  try {
    return frames_from_bytes(fs::read_file(path));
  } catch (const DataError& e) {
    throw DataError(fmt::format("{}: {}", path, e.what()));
  }
}

}  // namespace pcmoe::proto
