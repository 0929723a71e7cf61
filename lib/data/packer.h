// Owns packing: the documents of one split, read file after file in a given order, become one
// token stream (BOS, the bytes, EOS for each document) cut into non-overlapping windows of a fixed
// number of tokens. A window may span documents and files; the partial window at the end is
// dropped. Streaming: one file is open at a time. Not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "common/data_config.h"
#include "data/documents.h"
#include "data/sources.h"
#include "data/split.h"

namespace pcmoe::data {

class WindowPacker {
 public:
  struct Counts {
    uint64_t files = 0;                  // files opened so far
    uint64_t documents = 0;              // documents of this split taken
    uint64_t other_split_documents = 0;  // documents skipped because they belong to the other split
    uint64_t document_tokens = 0;        // tokens of the documents taken (bytes + BOS + EOS)
    uint64_t tokens = 0;                 // tokens handed out in full windows
  };

  // `order` lists indices into `files`. next() throws pcmoe::DataError naming the path when a file
  // cannot be read.
  WindowPacker(std::shared_ptr<const std::vector<SourceFile>> files, std::vector<size_t> order,
               const DataConfig& config, Split split, size_t window_tokens);

  // Writes the next window_tokens tokens to `out` and returns true, or returns false when the
  // documents run out before the window is full.
  bool next(int32_t* out);
  const Counts& counts() const { return counts_; }

 private:
  bool next_document();

  std::shared_ptr<const std::vector<SourceFile>> files_;
  std::vector<size_t> order_;
  size_t next_file_ = 0;
  Splitter splitter_;
  Split split_;
  size_t window_tokens_;
  DocumentReader reader_;
  bool reader_open_ = false;
  std::string_view doc_;  // the current document, valid until reader_ advances
  size_t doc_pos_ = 0;    // position in BOS + doc_ + EOS
  bool have_doc_ = false;
  bool exhausted_ = false;
  Counts counts_;
};

}  // namespace pcmoe::data
