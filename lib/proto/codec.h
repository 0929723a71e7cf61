// Owns the wire encoding of every message (proto/PROTOCOL.md, "Frames"): a multipart of
//   frame 0  the ASCII tag "PCMOE/<major>",
//   frame 1  a msgpack map: "t" (MsgType), "v" (minor version), then the message's fields under
//            the keys of fields.h; a tensor field is a descriptor [dtype code, [dims...]],
//   frame 2.. the raw bytes of each tensor, in the order the message's tensors are listed.
// decode() is the gatekeeper for everything a peer sends: it checks sizes before allocating,
// never trusts a declared length and throws DecodeError (never anything else for bad input).
// Stateless; thread-safe. Decoded tensors share the input frames' storage (no copy).
#pragma once

#include <string>
#include <vector>

#include "proto/decode_error.h"
#include "proto/describe.h"
#include "proto/messages.h"
#include "proto/wire_tensor.h"

namespace pcmoe::proto {

// "PCMOE/<kProtocolMajor>".
const std::string& protocol_tag();

// All frames of `m` (tag, header, tensor frames). Tensor frames share the message's Blobs.
// Throws pcmoe::Error if a tensor's bytes do not match its dtype and shape (a caller bug).
std::vector<Blob> encode(const Message& m);

// The message carried by `frames` (routing-id frame already removed). Throws DecodeError with
// the code PROTOCOL.md assigns to each failure. Higher minor versions are accepted (unknown
// header keys are ignored); a different major is bad_version.
Message decode(const std::vector<Blob>& frames, const Limits& limits = Limits{});

}  // namespace pcmoe::proto
