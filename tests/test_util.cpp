// Test helpers (see test_util.h).
#include "test_util.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <stdexcept>

#include "common/fs.h"

namespace pcmoe::test {

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/pcmoe-test-XXXXXX";
  if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string TempDir::write(const std::string& rel, const std::string& content) const {
  std::string full = fs::join(path_, rel);
  fs::make_dirs(fs::dirname(full));
  fs::atomic_write(full, content);
  return full;
}

}  // namespace pcmoe::test
