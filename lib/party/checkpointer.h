// Owns a party's checkpoint writes and what a failed one does: never end the daemon. A failure
// (a full disk, a file-size limit, an I/O error) is logged (party.checkpoint_failed), the previous
// checkpoint stays as it was (writes are atomic: temp file, fsync, rename; the temp file is
// removed), and the write is tried again after a back-off — 10 s, doubling up to 5 min — or at the
// next checkpoint the session asks for, whichever comes first.
// Not thread-safe: the daemon's main thread uses it.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>

namespace pcmoe::party {

class Checkpointer {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  using Write = std::function<void(const std::string& path)>;  // throws pcmoe::Error on failure

  Checkpointer(std::string path, Write write);

  // Writes now. Returns "" on success, else the error (logged, a retry scheduled).
  std::string write(TimePoint now);
  // Whether a retry of a failed write is due at `now`.
  bool retry_due(TimePoint now) const { return retry_at_ && now >= *retry_at_; }
  const std::string& path() const { return path_; }
  int failures() const { return failures_; }  // consecutive failed writes

  static constexpr int kFirstRetryMs = 10000;
  static constexpr int kMaxRetryMs = 300000;

 private:
  std::string path_;
  Write write_;
  int failures_ = 0;
  std::optional<TimePoint> retry_at_;
};

}  // namespace pcmoe::party
