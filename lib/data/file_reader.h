// Owns streaming the bytes of one data file: plain files are read as they are, files that start
// with the gzip magic (1f 8b) are gunzipped on the fly (gzip, multi-member gzip, dictzip .dz).
// Memory use is independent of the file size. Not thread-safe; one reader per thread.
#pragma once

#include <cstddef>
#include <string>

namespace pcmoe::data {

class FileReader {
 public:
  // Opens `path`. Throws pcmoe::DataError naming the path if it cannot be opened or read.
  explicit FileReader(std::string path);
  ~FileReader();
  FileReader(const FileReader&) = delete;
  FileReader& operator=(const FileReader&) = delete;

  // Reads up to `n` bytes into `dst`; returns how many, 0 only at the end of the file. Throws
  // pcmoe::DataError naming the path on a read error or corrupt/truncated gzip data, so a damaged
  // file never yields silently truncated text.
  size_t read(char* dst, size_t n);
  // Reads until `n` bytes or the end of the file; returns how many.
  size_t read_full(char* dst, size_t n);

  bool compressed() const { return gz_ != nullptr; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int fd_ = -1;         // plain file
  void* gz_ = nullptr;  // gzFile, owns the descriptor when set
};

}  // namespace pcmoe::data
