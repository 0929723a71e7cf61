// Helpers shared by tests: temporary directories, writing small files, source/binary paths.
#pragma once

#include <string>

namespace pcmoe::test {

// A fresh directory under $TMPDIR (or /tmp), removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  // Writes `content` to path()/rel (creating directories) and returns the full path.
  std::string write(const std::string& rel, const std::string& content) const;

 private:
  std::string path_;
};

inline std::string source_dir() { return PCMOE_SOURCE_DIR; }
inline std::string bin_dir() { return PCMOE_BIN_DIR; }

}  // namespace pcmoe::test
