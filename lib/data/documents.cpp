// Streaming document splitter (see documents.h). The buffer holds at most one pending document
// (<= 1 MiB of complete lines), one unfinished line (<= 1 MiB before it is cut) and one read
// chunk, so a line or document of any length costs bounded memory.
#include "data/documents.h"

#include <algorithm>
#include <cstring>

#include "common/error.h"

namespace pcmoe::data {
namespace {

constexpr size_t kReadChunkBytes = size_t{1} << 20;
constexpr size_t kBufferBytes = 2 * kMaxDocumentBytes + kReadChunkBytes;

bool is_separator(std::string_view line) { return line == "%" || line == "%\r"; }

}  // namespace

bool is_blank(std::string_view s) {
  for (char c : s) {
    if (c != ' ' && c != '\n' && c != '\t' && c != '\r' && c != '\f' && c != '\v') return false;
  }
  return true;
}

bool has_fortune_separator(std::string_view head, bool whole_file) {
  size_t line_begin = 0;
  while (line_begin < head.size()) {
    size_t nl = head.find('\n', line_begin);
    if (nl == std::string_view::npos) {
      return whole_file && is_separator(head.substr(line_begin));
    }
    if (is_separator(head.substr(line_begin, nl - line_begin))) return true;
    line_begin = nl + 1;
  }
  return false;
}

DocumentReader::DocumentReader() = default;
DocumentReader::~DocumentReader() = default;

const std::string& DocumentReader::path() const {
  static const std::string kNone;
  return file_ ? file_->path() : kNone;
}

void DocumentReader::open(const std::string& path, Format format) {
  file_.reset();
  file_ = std::make_unique<FileReader>(path);
  if (!buf_) buf_.reset(new char[kBufferBytes]);
  format_ = format;
  doc_begin_ = scan_ = end_ = 0;
  eof_ = false;
  line_continues_ = false;
}

void DocumentReader::refill() {
  if (doc_begin_ > 0) {
    std::memmove(buf_.get(), buf_.get() + doc_begin_, end_ - doc_begin_);
    end_ -= doc_begin_;
    scan_ -= doc_begin_;
    doc_begin_ = 0;
  }
  // The splitters cut before the pending bytes exceed 2 MiB, so a whole chunk always fits.
  PCMOE_CHECK(kBufferBytes - end_ >= kReadChunkBytes, "document buffer overflow reading '{}'", file_->path());
  size_t got = file_->read(buf_.get() + end_, kBufferBytes - end_);
  if (got == 0) eof_ = true;
  end_ += got;
}

std::string_view DocumentReader::cut_piece() {
  std::string_view piece(buf_.get() + doc_begin_, std::min(kMaxDocumentBytes, end_ - doc_begin_));
  doc_begin_ += piece.size();
  if (scan_ < doc_begin_) {
    scan_ = doc_begin_;
    line_continues_ = true;
  }
  return piece;
}

bool DocumentReader::next(std::string_view* doc) {
  PCMOE_CHECK(file_ != nullptr, "DocumentReader::next() before open()");
  if (format_ == Format::automatic) {
    while (!eof_ && end_ < kFormatDetectBytes) refill();
    size_t n = std::min(end_, kFormatDetectBytes);
    bool whole = eof_ && n == end_;
    format_ = has_fortune_separator(std::string_view(buf_.get(), n), whole) ? Format::fortune : Format::text;
  }
  switch (format_) {
    case Format::fortune:
      return next_fortune(doc);
    case Format::lines:
      return next_lines(doc);
    default:
      return next_text(doc);
  }
}

// ---- splitters ----

bool DocumentReader::next_text(std::string_view* doc) {
  for (;;) {
    if (end_ - doc_begin_ >= kMaxDocumentBytes || (eof_ && end_ > doc_begin_)) {
      std::string_view piece = cut_piece();
      if (!is_blank(piece)) {
        *doc = piece;
        return true;
      }
      continue;
    }
    if (eof_) return false;
    refill();
  }
}

bool DocumentReader::next_fortune(std::string_view* doc) {
  const char* b = buf_.get();
  for (;;) {
    // [doc_begin_, scan_) are complete lines of the pending document, none a separator.
    if (scan_ - doc_begin_ > kMaxDocumentBytes) {
      std::string_view piece = cut_piece();
      if (is_blank(piece)) continue;
      *doc = piece;
      return true;
    }
    const void* nl = std::memchr(b + scan_, '\n', end_ - scan_);
    size_t line_end = nl ? static_cast<size_t>(static_cast<const char*>(nl) - b) : end_;
    if (!nl && !eof_) {
      if (line_end - scan_ > kMaxDocumentBytes) {  // one endless line: cut inside it
        std::string_view piece = cut_piece();
        if (is_blank(piece)) continue;
        *doc = piece;
        return true;
      }
      refill();
      b = buf_.get();
      continue;
    }
    if (!nl && scan_ == end_) {  // end of file, nothing unexamined
      std::string_view rest(b + doc_begin_, end_ - doc_begin_);
      doc_begin_ = end_;
      if (rest.empty() || is_blank(rest)) return false;
      *doc = rest;
      return true;
    }
    std::string_view line(b + scan_, line_end - scan_);
    bool separator = !line_continues_ && is_separator(line);
    line_continues_ = false;
    if (!separator) {
      scan_ = nl ? line_end + 1 : end_;
      continue;
    }
    std::string_view d(b + doc_begin_, scan_ - doc_begin_);
    doc_begin_ = scan_ = nl ? line_end + 1 : end_;
    if (!is_blank(d)) {
      *doc = d;
      return true;
    }
  }
}

bool DocumentReader::next_lines(std::string_view* doc) {
  for (;;) {
    const char* b = buf_.get();
    // scan_ >= doc_begin_: no newline in [doc_begin_, scan_).
    const void* nl = std::memchr(b + scan_, '\n', end_ - scan_);
    size_t line_end = nl ? static_cast<size_t>(static_cast<const char*>(nl) - b) : end_;
    if (line_end - doc_begin_ > kMaxDocumentBytes) {
      std::string_view piece = cut_piece();
      if (!is_blank(piece)) {
        *doc = piece;
        return true;
      }
      continue;
    }
    if (!nl && !eof_) {
      scan_ = end_;
      refill();
      continue;
    }
    if (!nl && doc_begin_ == end_) return false;
    std::string_view line(b + doc_begin_, line_end - doc_begin_);
    doc_begin_ = scan_ = nl ? line_end + 1 : end_;
    line_continues_ = false;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (!is_blank(line)) {
      *doc = line;
      return true;
    }
  }
}

}  // namespace pcmoe::data
