// Owns the batches a trainer and an evaluator consume: the train stream (infinite, shuffled,
// exactly resumable from a Position), the held-out stream (fixed order, cycling), the fixed
// held-out evaluation set, and a one-pass corpus scan for start-up logging. Torch-free: batches
// are plain int32 token ids. Nothing here is thread-safe; use one loader per thread.
//
// Packing: each document of the split becomes BOS + its bytes + EOS; documents are concatenated
// into one token stream cut into non-overlapping windows of seq_len + 1 tokens (a window may span
// documents). The partial window at the end of an epoch is dropped. The split is decided per
// document before packing (split.h), so held-out text never reaches a train window.
//
// Train order of epoch e: all files of all sources shuffled by pcmoe::Rng seeded from (seed, e);
// documents in file order; windows through a shuffle buffer of `shuffle_buffer` windows seeded
// from (seed, e). Held-out order: files sorted as listed (sources.h), no shuffling.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "common/data_config.h"
#include "common/hash.h"
#include "data/sources.h"
#include "data/split.h"

namespace pcmoe::data {

class WindowPacker;

struct Batch {
  int batch_size = 0;
  int seq_len = 0;
  // batch_size * (seq_len + 1) ids, row-major; inputs are [:, :seq_len], targets [:, 1:].
  std::vector<int32_t> tokens;
};

class BatchLoader {
 public:
  // Where the stream stands: `sequences` windows of epoch `epoch` have been handed out. After the
  // last window of an epoch the position is {epoch + 1, 0}.
  struct Position {
    uint64_t epoch = 0;
    uint64_t sequences = 0;
    bool operator==(const Position& o) const { return epoch == o.epoch && sequences == o.sequences; }
  };

  // Lists the files and reads the start of epoch 0. Throws pcmoe::ConfigError for batch_size or
  // seq_len < 1, pcmoe::DataError naming the path for a missing or unreadable file, and
  // pcmoe::DataError naming the sources when the split yields no full window of seq_len + 1 tokens.
  BatchLoader(const DataConfig& config, Split split, int batch_size, int seq_len);
  BatchLoader(BatchLoader&&) noexcept;
  BatchLoader& operator=(BatchLoader&&) noexcept;
  ~BatchLoader();

  // The next batch_size windows. Train: epoch after epoch, forever. Held-out: in order, starting
  // over when exhausted. Throws pcmoe::DataError if a file became unreadable.
  Batch next();
  Position position() const { return {epoch_, sequences_}; }
  // Restores the exact state at `pos` by replaying `pos.epoch` from its start (memory: the shuffle
  // buffer only), so the following batches equal those of an uninterrupted loader. Throws
  // pcmoe::DataError if the epoch has fewer than pos.sequences windows (the data changed); the
  // loader must then be seeked again before use.
  void seek(const Position& pos);
  uint64_t epoch() const { return epoch_; }
  // Windows kept for shuffling (shuffle_buffer for train, 1 for held-out).
  size_t buffer_windows() const { return slots_; }

 private:
  void start_epoch(uint64_t epoch);
  // Hands out one window into `dst` (or drops it when dst is null) and advances the position.
  void emit(int32_t* dst);
  int32_t* slot(size_t i) { return buffer_.data() + i * window_; }

  DataConfig config_;
  Split split_;
  int batch_size_;
  int seq_len_;
  size_t window_;  // seq_len + 1
  size_t slots_;
  std::shared_ptr<const std::vector<SourceFile>> files_;
  std::unique_ptr<WindowPacker> packer_;
  std::vector<int32_t> buffer_;  // slots_ windows
  size_t n_buffered_ = 0;
  bool packer_done_ = false;
  bool epoch_started_ = false;
  Rng rng_;
  uint64_t epoch_ = 0;
  uint64_t sequences_ = 0;
};

// The first n_batches batches of the held-out stream, so every evaluation uses the same set. If the
// held-out split has fewer than n_batches * batch_size windows, returns the full batches it has,
// none repeated; if it has fewer than batch_size, one smaller batch (batch_size = the windows
// there are). Throws pcmoe::DataError naming the sources if it has no window at all, and
// pcmoe::ConfigError for n_batches, batch_size or seq_len < 1.
std::vector<Batch> heldout_batches(const DataConfig& config, int n_batches, int batch_size, int seq_len);

struct CorpusStats {
  uint64_t files = 0;
  uint64_t documents = 0;
  uint64_t train_documents = 0;
  uint64_t heldout_documents = 0;
  uint64_t bytes = 0;  // bytes of all documents (decompressed, without separators)
};

// Reads every document once. Throws pcmoe::DataError like BatchLoader.
CorpusStats scan_corpus(const DataConfig& config);

}  // namespace pcmoe::data
