// Helpers shared by the lib/data tests: configs over a temporary corpus, gzip writing, reading a
// file's documents, decoding windows.
#pragma once

#include <zlib.h>

#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "common/data_config.h"
#include "data/documents.h"
#include "data/loader.h"
#include "data/tokenizer.h"

namespace pcmoe::test {

inline DataConfig one_source(const std::string& path, const std::string& format = "auto",
                             int heldout_permille = 0) {
  DataConfig c;
  DataSource s;
  s.path = path;
  s.format = format;
  c.sources.push_back(s);
  c.heldout_permille = heldout_permille;
  return c;
}

// Writes `content` gzip-compressed with zlib; mode "wb" starts a file, "ab" appends a member.
inline void write_gz(const std::string& path, std::string_view content, const char* mode = "wb") {
  gzFile gz = gzopen(path.c_str(), mode);
  if (!gz) throw std::runtime_error("gzopen failed: " + path);
  if (!content.empty() && gzwrite(gz, content.data(), static_cast<unsigned>(content.size())) <= 0) {
    gzclose(gz);
    throw std::runtime_error("gzwrite failed: " + path);
  }
  if (gzclose(gz) != Z_OK) throw std::runtime_error("gzclose failed: " + path);
}

inline std::vector<std::string> read_docs(const std::string& path, data::Format format) {
  data::DocumentReader r(path, format);
  std::vector<std::string> docs;
  std::string_view d;
  while (r.next(&d)) docs.emplace_back(d);
  return docs;
}

// The text of a window or batch row, specials dropped.
inline std::string text_of(const int32_t* ids, size_t n) { return data::ByteTokenizer{}.decode(ids, n); }

// All windows of a batch as separate vectors.
inline std::vector<std::vector<int32_t>> rows_of(const data::Batch& b) {
  std::vector<std::vector<int32_t>> rows;
  const size_t w = static_cast<size_t>(b.seq_len) + 1;
  for (int i = 0; i < b.batch_size; ++i) {
    rows.emplace_back(b.tokens.begin() + static_cast<std::ptrdiff_t>(i * w),
                      b.tokens.begin() + static_cast<std::ptrdiff_t>((i + 1) * w));
  }
  return rows;
}

// Complete documents (text between BOS and EOS) in a token stream; a document cut off at either
// end is left out.
inline std::vector<std::string> complete_docs(const std::vector<int32_t>& tokens) {
  std::vector<std::string> docs;
  std::string cur;
  bool open = false;
  for (int32_t t : tokens) {
    if (t == data::ByteTokenizer::kBos) {
      cur.clear();
      open = true;
    } else if (t == data::ByteTokenizer::kEos) {
      if (open) docs.push_back(cur);
      open = false;
    } else if (open) {
      cur.push_back(static_cast<char>(t));
    }
  }
  return docs;
}

// The whole held-out token stream, in order, up to the last full window of 2 tokens.
inline std::vector<int32_t> heldout_stream(const DataConfig& config) {
  std::vector<int32_t> all;
  for (const auto& b : data::heldout_batches(config, 1 << 30, 1, 1))
    all.insert(all.end(), b.tokens.begin(), b.tokens.end());
  return all;
}

}  // namespace pcmoe::test
