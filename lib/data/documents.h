// Owns cutting one file's bytes into documents according to its format, streaming:
//   text    the whole file is one document;
//   fortune documents are separated by lines that are exactly "%" (the separator is dropped);
//   lines   every line is a document (without its "\n" or "\r\n");
//   auto    fortune if the first 64 KiB hold a line that is exactly "%", else text.
// A line "%\r" also counts as a separator (CRLF files). Documents that are empty or only
// whitespace are skipped. A document longer than kMaxDocumentBytes is returned as consecutive
// pieces of kMaxDocumentBytes (the last one shorter), each a document of its own. Memory use is
// bounded (about 3 MiB a reader) whatever the file size. Not thread-safe.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "data/file_reader.h"
#include "data/sources.h"

namespace pcmoe::data {

inline constexpr size_t kMaxDocumentBytes = size_t{1} << 20;
inline constexpr size_t kFormatDetectBytes = 64 * 1024;

// True if `head` holds a line that is exactly "%" (or "%\r"). `whole_file`: head is the entire
// file, so a final "%" without a newline is a line too.
bool has_fortune_separator(std::string_view head, bool whole_file);
// True if `s` is empty or only spaces, tabs, CR, LF, FF and VT.
bool is_blank(std::string_view s);

class DocumentReader {
 public:
  DocumentReader();
  DocumentReader(const std::string& path, Format format) : DocumentReader() { open(path, format); }
  ~DocumentReader();
  DocumentReader(const DocumentReader&) = delete;
  DocumentReader& operator=(const DocumentReader&) = delete;

  // Starts reading `path` (closing the previous file; the buffer is reused). Throws
  // pcmoe::DataError naming the path if it cannot be opened.
  void open(const std::string& path, Format format);
  // Sets *doc to the next document and returns true, or returns false at the end of the file. The
  // view stays valid until the next call of next() or open(). Throws pcmoe::DataError naming the
  // path on a read error or corrupt gzip data.
  bool next(std::string_view* doc);
  // The format in use: Format::automatic is resolved by the first next().
  Format format() const { return format_; }
  const std::string& path() const;

 private:
  bool next_text(std::string_view* doc);
  bool next_fortune(std::string_view* doc);
  bool next_lines(std::string_view* doc);
  // Moves the pending bytes to the front and appends what the file gives; sets eof_ at the end.
  void refill();
  // Returns the first kMaxDocumentBytes of the pending document and drops them from it.
  std::string_view cut_piece();

  std::unique_ptr<FileReader> file_;
  std::unique_ptr<char[]> buf_;
  Format format_ = Format::automatic;
  size_t doc_begin_ = 0;  // start of the pending document
  size_t scan_ = 0;       // start of the first line not yet examined
  size_t end_ = 0;        // end of the valid bytes
  bool eof_ = false;
  bool line_continues_ = false;  // the line at scan_ began before doc_begin_ (after a cut)
};

}  // namespace pcmoe::data
