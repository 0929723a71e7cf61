// Batch streams over a corpus (see loader.h). Resuming replays the current epoch from its start
// instead of saving the shuffle buffer: a checkpoint then needs two integers, and the replay reads
// at most one epoch, which is cheap next to training on it.
#include "data/loader.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <numeric>
#include <utility>

#include "common/error.h"
#include "common/log.h"
#include "data/packer.h"

namespace pcmoe::data {
namespace {

// Independent random streams of one epoch.
constexpr uint64_t kFileOrderStream = 0x66696c65;  // "file"
constexpr uint64_t kBufferStream = 0x62756666;     // "buff"

uint64_t epoch_seed(uint64_t seed, uint64_t epoch, uint64_t stream) {
  return mix_seed(mix_seed(seed, epoch), stream);
}

const char* split_name(Split split) { return split == Split::train ? "train" : "held-out"; }

void check_shape(int batch_size, int seq_len) {
  PCMOE_CHECK_T(ConfigError, batch_size >= 1, "data: batch_size must be >= 1, found {}", batch_size);
  PCMOE_CHECK_T(ConfigError, seq_len >= 1, "data: seq_len must be >= 1, found {}", seq_len);
}

[[noreturn]] void throw_no_windows(const DataConfig& config, Split split, size_t window,
                                   const WindowPacker::Counts& c) {
  throw DataError(fmt::format(
      "data sources {}: the {} split has no full sequence of {} tokens (seq_len + 1): {} files, {} documents "
      "({} tokens) in this split, {} documents in the other (heldout_permille {}). Add data, lower seq_len "
      "or "
      "change heldout_permille",
      describe_sources(config), split_name(split), window, c.files, c.documents, c.document_tokens,
      c.other_split_documents, config.heldout_permille));
}

std::vector<size_t> identity_order(size_t n) {
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t{0});
  return order;
}

}  // namespace

// ---- BatchLoader ----

BatchLoader::BatchLoader(const DataConfig& config, Split split, int batch_size, int seq_len)
    : config_(config), split_(split), batch_size_(batch_size), seq_len_(seq_len) {
  check_shape(batch_size, seq_len);
  window_ = static_cast<size_t>(seq_len) + 1;
  slots_ = split == Split::train ? static_cast<size_t>(std::max(1, config.shuffle_buffer)) : 1;
  files_ = std::make_shared<const std::vector<SourceFile>>(list_files(config));
  buffer_.resize(slots_ * window_);
  start_epoch(0);  // fails now, not at the first batch, if the split is empty
}

BatchLoader::BatchLoader(BatchLoader&&) noexcept = default;
BatchLoader& BatchLoader::operator=(BatchLoader&&) noexcept = default;
BatchLoader::~BatchLoader() = default;

void BatchLoader::start_epoch(uint64_t epoch) {
  epoch_ = epoch;
  sequences_ = 0;
  auto order = identity_order(files_->size());
  if (split_ == Split::train) Rng(epoch_seed(config_.seed, epoch, kFileOrderStream)).shuffle(order);
  rng_.reseed(epoch_seed(config_.seed, epoch, kBufferStream));
  packer_ = std::make_unique<WindowPacker>(files_, std::move(order), config_, split_, window_);
  n_buffered_ = 0;
  while (n_buffered_ < slots_ && packer_->next(slot(n_buffered_))) ++n_buffered_;
  packer_done_ = n_buffered_ < slots_;
  if (n_buffered_ == 0) throw_no_windows(config_, split_, window_, packer_->counts());
  epoch_started_ = true;
  PCMOE_DEBUG("data.epoch_start")
      .kv("split", split_name(split_))
      .kv("epoch", epoch)
      .kv("files", files_->size());
}

void BatchLoader::emit(int32_t* dst) {
  if (!epoch_started_) start_epoch(epoch_);
  // Shuffle buffer: hand out a random buffered window and put the next window of the stream in
  // its place; once the stream is dry, drain the buffer in random order.
  size_t j = split_ == Split::train ? static_cast<size_t>(rng_.below(n_buffered_)) : 0;
  if (dst) std::memcpy(dst, slot(j), window_ * sizeof(int32_t));
  if (packer_done_ || !packer_->next(slot(j))) {
    packer_done_ = true;
    if (j + 1 != n_buffered_) std::memcpy(slot(j), slot(n_buffered_ - 1), window_ * sizeof(int32_t));
    --n_buffered_;
  }
  ++sequences_;
  if (n_buffered_ == 0) {  // the epoch is over: the position becomes {epoch + 1, 0}
    ++epoch_;
    sequences_ = 0;
    epoch_started_ = false;
    packer_.reset();
  }
}

Batch BatchLoader::next() {
  Batch b;
  b.batch_size = batch_size_;
  b.seq_len = seq_len_;
  b.tokens.resize(static_cast<size_t>(batch_size_) * window_);
  for (int i = 0; i < batch_size_; ++i) emit(b.tokens.data() + static_cast<size_t>(i) * window_);
  return b;
}

void BatchLoader::seek(const Position& pos) {
  start_epoch(pos.epoch);
  for (uint64_t i = 0; i < pos.sequences; ++i) {
    if (epoch_ != pos.epoch) {
      throw DataError(
          fmt::format("data sources {}: cannot resume at epoch {} sequence {}: the {} epoch has only {} "
                      "sequences (did the "
                      "data or seq_len change since the checkpoint?)",
                      describe_sources(config_), pos.epoch, pos.sequences, split_name(split_), i));
    }
    emit(nullptr);
  }
}

// ---- fixed held-out set and corpus scan ----

std::vector<Batch> heldout_batches(const DataConfig& config, int n_batches, int batch_size, int seq_len) {
  check_shape(batch_size, seq_len);
  PCMOE_CHECK_T(ConfigError, n_batches >= 1, "data: the number of held-out batches must be >= 1, found {}",
                n_batches);
  const size_t window = static_cast<size_t>(seq_len) + 1;
  auto files = std::make_shared<const std::vector<SourceFile>>(list_files(config));
  WindowPacker packer(files, identity_order(files->size()), config, Split::heldout, window);
  const size_t wanted = static_cast<size_t>(n_batches) * static_cast<size_t>(batch_size);
  std::vector<int32_t> tokens;
  size_t windows = 0;
  tokens.resize(window);
  while (windows < wanted && packer.next(tokens.data() + windows * window)) {
    ++windows;
    tokens.resize((windows + 1) * window);
  }
  if (windows == 0) throw_no_windows(config, Split::heldout, window, packer.counts());
  const size_t rows = std::min(windows, static_cast<size_t>(batch_size));
  const size_t n_out = windows / rows;
  std::vector<Batch> out(n_out);
  for (size_t i = 0; i < n_out; ++i) {
    out[i].batch_size = static_cast<int>(rows);
    out[i].seq_len = seq_len;
    auto first = tokens.begin() + static_cast<std::ptrdiff_t>(i * rows * window);
    out[i].tokens.assign(first, first + static_cast<std::ptrdiff_t>(rows * window));
  }
  return out;
}

CorpusStats scan_corpus(const DataConfig& config) {
  auto files = list_files(config);
  Splitter splitter(config);
  DocumentReader reader;
  CorpusStats stats;
  stats.files = files.size();
  for (const auto& f : files) {
    reader.open(f.path, f.format);
    std::string_view doc;
    while (reader.next(&doc)) {
      ++stats.documents;
      stats.bytes += doc.size();
      if (splitter.heldout(doc)) {
        ++stats.heldout_documents;
      } else {
        ++stats.train_documents;
      }
    }
  }
  return stats;
}

}  // namespace pcmoe::data
