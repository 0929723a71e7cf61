// Test helpers (see test_util.h).
#include "test_util.h"

#include <ftw.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
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
  // nftw, not std::filesystem::remove_all: the latter crashed (SIGSEGV) in test binaries linked
  // with the pip wheel's libtorch on the GPU machine.
  ::nftw(
      path_.c_str(), [](const char* p, const struct stat*, int, struct FTW*) { return std::remove(p); }, 32,
      FTW_DEPTH | FTW_PHYS);
}

std::string TempDir::write(const std::string& rel, const std::string& content) const {
  std::string full = fs::join(path_, rel);
  fs::make_dirs(fs::dirname(full));
  fs::atomic_write(full, content);
  return full;
}

}  // namespace pcmoe::test
