// Owns the one-line human description of a message for logs, e.g.
//   expert_forward rid=7 req="alice" step=12 layer=1 mode=0 ids=int32[96] rows=bf16[96,512]
// Strings are quoted and cut at 32 bytes, lists shown by length, tensors by dtype and shape.
// Stateless; thread-safe; never throws for a well-formed Message.
#pragma once

#include <string>

#include "proto/messages.h"

namespace pcmoe::proto {

std::string describe(const Message& m);

}  // namespace pcmoe::proto
