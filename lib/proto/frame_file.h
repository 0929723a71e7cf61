// Owns the frame-file container used for golden messages and captured traffic
// (proto/golden/README.md): u32 frame count, then per frame a u32 byte length and the bytes;
// all integers little-endian. Stateless; thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "proto/messages.h"

namespace pcmoe::proto {

std::string frames_to_bytes(const std::vector<Blob>& frames);
// Throws pcmoe::DataError if `bytes` is not exactly one well-formed container.
std::vector<Blob> frames_from_bytes(std::string_view bytes);

// Atomic write / whole read; throw pcmoe::Error (I/O) or pcmoe::DataError (bad container).
void write_frame_file(const std::string& path, const std::vector<Blob>& frames);
std::vector<Blob> read_frame_file(const std::string& path);

}  // namespace pcmoe::proto
