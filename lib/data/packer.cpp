// Document packing into fixed-length windows (see packer.h).
#include "data/packer.h"

#include <algorithm>
#include <utility>

#include "data/tokenizer.h"

namespace pcmoe::data {

WindowPacker::WindowPacker(std::shared_ptr<const std::vector<SourceFile>> files, std::vector<size_t> order,
                           const DataConfig& config, Split split, size_t window_tokens)
    : files_(std::move(files)),
      order_(std::move(order)),
      splitter_(config),
      split_(split),
      window_tokens_(window_tokens) {}

bool WindowPacker::next_document() {
  for (;;) {
    if (!reader_open_) {
      if (next_file_ == order_.size()) return false;
      const SourceFile& file = (*files_)[order_[next_file_]];
      reader_.open(file.path, file.format);
      ++next_file_;
      ++counts_.files;
      reader_open_ = true;
    }
    std::string_view doc;
    if (!reader_.next(&doc)) {
      reader_open_ = false;
      continue;
    }
    if (splitter_.side(doc) != split_) {
      ++counts_.other_split_documents;
      continue;
    }
    ++counts_.documents;
    counts_.document_tokens += doc.size() + 2;
    doc_ = doc;
    doc_pos_ = 0;
    return true;
  }
}

bool WindowPacker::next(int32_t* out) {
  if (exhausted_) return false;
  size_t filled = 0;
  while (filled < window_tokens_) {
    if (!have_doc_) {
      if (!next_document()) {
        exhausted_ = true;
        return false;
      }
      have_doc_ = true;
    }
    // Virtual token sequence of the document: [BOS, bytes..., EOS], indexed by doc_pos_.
    if (doc_pos_ == 0) {
      out[filled++] = ByteTokenizer::kBos;
      doc_pos_ = 1;
    } else if (doc_pos_ <= doc_.size()) {
      size_t n = std::min(doc_.size() - (doc_pos_ - 1), window_tokens_ - filled);
      const auto* bytes = reinterpret_cast<const unsigned char*>(doc_.data()) + (doc_pos_ - 1);
      for (size_t i = 0; i < n; ++i) out[filled + i] = bytes[i];
      filled += n;
      doc_pos_ += n;
    } else {
      out[filled++] = ByteTokenizer::kEos;
      have_doc_ = false;
    }
  }
  counts_.tokens += window_tokens_;
  return true;
}

}  // namespace pcmoe::data
