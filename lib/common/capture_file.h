// Owns the audit capture file (privacy audits only, never on by default): an append-only stream of
// records, each one expert request as a host received it (rows, expert ids) or as its requester
// sent it (the token id behind each row: ground truth for scoring, never sent anywhere). Written by
// pcmoe-party (audit.capture), read by pcmoe-attack. No libtorch.
// Format: "PCMOECAP1" | (u64 length | one record encoded as a tensor file, see tensor_file.h)*.
// A record's meta: side (received|sent), self (this party's id), self_index, peer (the requester's
// id on the host side, the host's party index on the requester side), step, layer, rid; tensors:
// "rows" (f32 [n, d]) and "ids" (i32 [n]) received, or "tokens" (i32 [n]) sent.
// A truncated last record (a party killed mid-write) is skipped by the reader; any other damage is
// a DataError naming the file and the record.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "common/tensor_file.h"

namespace pcmoe {

struct CaptureRecord {
  std::string side;  // "received" | "sent"
  std::string self;  // the party that wrote it
  int64_t self_index = -1;
  std::string peer;  // received: the requester's id; sent: the host's party index
  int64_t step = 0;
  int64_t layer = 0;
  uint64_t rid = 0;
  std::vector<RawTensor> tensors;

  const RawTensor* find(const std::string& name) const;
};

// Appends records to one capture file, at most `max_bytes` in all (then it stops, logging
// audit.capture_full once). Thread-safe (the expert service's compute thread and the trainer).
class CaptureWriter {
 public:
  // Creates `path` (mode 0600, its directory too) or throws Error naming it.
  CaptureWriter(std::string path, uint64_t max_bytes);
  ~CaptureWriter();
  CaptureWriter(const CaptureWriter&) = delete;
  CaptureWriter& operator=(const CaptureWriter&) = delete;

  // False once the file is full (the record is not written).
  bool append(const CaptureRecord& r);
  const std::string& path() const { return path_; }
  uint64_t records() const;
  uint64_t bytes() const;

 private:
  std::string path_;
  uint64_t max_bytes_;
  mutable std::mutex mu_;
  int fd_ = -1;
  uint64_t bytes_ = 0;
  uint64_t records_ = 0;
  bool full_ = false;
};

// Every complete record of a capture file. Throws DataError naming the file.
std::vector<CaptureRecord> read_capture(const std::string& path);

}  // namespace pcmoe
