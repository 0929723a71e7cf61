// Fuzzing helpers shared by the decoder fuzz test (tests/proto), the hub's socket fuzz test
// (tests/hub) and the expert service's (tests/integration): mutators of encoded frame sets
// (header field type swaps, byte mutations, NaN/Inf injection into tensor frames, frame drops,
// duplications and swaps) and a tally of what a fuzzed daemon answered. Deterministic: every
// random choice comes from the caller's pcmoe::Rng.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/hash.h"
#include "net/socket.h"
#include "proto/codec.h"

namespace pcmoe::test {

using Frames = std::vector<proto::Blob>;

// Replaces, drops or duplicates one key of the msgpack header (frame 1) with a random value of any
// type; does nothing when frame 1 is not a non-empty map.
void swap_field_type(Rng& rng, Frames& f);
// One mutation of frame `idx`: bit flips, an interesting byte, a huge declared length, truncation.
void mutate_bytes(Rng& rng, Frames& f, size_t idx);
// Writes a NaN or Inf (fp32, or 16-bit) into one tensor frame (frames 2...).
void inject_non_finite(Rng& rng, Frames& f);
// Drops, duplicates, swaps or appends a frame, or breaks the protocol tag.
void mutate_frames(Rng& rng, Frames& f);
// min_frames to 5 frames of random bytes (the first one the protocol tag half of the time).
Frames random_frames(Rng& rng, size_t min_frames);

// What a fuzzed daemon answered: reply counts by message type, or by error code for ErrorMsg.
struct ReplyTally {
  uint64_t replies = 0;
  std::map<std::string, uint64_t> answers;

  // Receives what `client` has (waiting up to timeout_ms for the first reply only); a reply that
  // does not decode under `limits` fails the test, naming `who`.
  void drain(net::Client& client, int timeout_ms, const proto::Limits& limits, const char* who);
};

// " key=count key=count ..." for a summary line.
std::string counts_text(const std::map<std::string, uint64_t>& counts);

}  // namespace pcmoe::test
