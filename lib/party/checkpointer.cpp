// A party's checkpoint writes, retried after failures (see checkpointer.h).
#include "party/checkpointer.h"

#include <algorithm>

#include "common/error.h"
#include "common/log.h"

namespace pcmoe::party {

Checkpointer::Checkpointer(std::string path, Write write)
    : path_(std::move(path)), write_(std::move(write)) {}

std::string Checkpointer::write(TimePoint now) {
  try {
    write_(path_);
    if (failures_ > 0) PCMOE_INFO("party.checkpoint_recovered").kv("path", path_).kv("failures", failures_);
    failures_ = 0;
    retry_at_.reset();
    return "";
  } catch (const Error& e) {
    ++failures_;
    const int delay_ms = std::min(kMaxRetryMs, kFirstRetryMs << std::min(failures_ - 1, 5));
    retry_at_ = now + std::chrono::milliseconds(delay_ms);
    PCMOE_ERROR("party.checkpoint_failed")
        .kv("path", path_)
        .kv("error", e.what())
        .kv("failures", failures_)
        .kv("retry_in_ms", delay_ms)
        .kv("previous", "kept (the write is atomic)");
    return e.what();
  }
}

}  // namespace pcmoe::party
