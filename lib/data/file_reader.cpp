// Streaming file reader with transparent gunzip (see file_reader.h). Plain files bypass zlib:
// read(2) is faster than gzread's transparent mode.
#include "data/file_reader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <utility>

#include "common/error.h"

namespace pcmoe::data {
namespace {

constexpr unsigned kGzBufferBytes = 256 * 1024;

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw DataError("data file '" + path + "' " + what);
}

}  // namespace

FileReader::FileReader(std::string path) : path_(std::move(path)) {
  fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) fail(path_, std::string("cannot be opened: ") + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd_);
    fd_ = -1;
    fail(path_, "is not a regular file");
  }
  unsigned char magic[2] = {0, 0};
  ssize_t got = ::pread(fd_, magic, 2, 0);
  if (got < 0) {
    int err = errno;
    ::close(fd_);
    fd_ = -1;
    fail(path_, std::string("cannot be read: ") + std::strerror(err));
  }
  if (got == 2 && magic[0] == 0x1f && magic[1] == 0x8b) {
    gzFile gz = ::gzdopen(fd_, "rb");
    if (!gz) {
      ::close(fd_);
      fd_ = -1;
      fail(path_, "cannot be opened by zlib");
    }
    ::gzbuffer(gz, kGzBufferBytes);
    gz_ = gz;
    fd_ = -1;  // owned by zlib now
  }
}

FileReader::~FileReader() {
  if (gz_) ::gzclose_r(static_cast<gzFile>(gz_));
  if (fd_ >= 0) ::close(fd_);
}

size_t FileReader::read(char* dst, size_t n) {
  if (n == 0) return 0;
  if (gz_) {
    auto gz = static_cast<gzFile>(gz_);
    int got = ::gzread(gz, dst, static_cast<unsigned>(std::min<size_t>(n, INT_MAX / 2)));
    int errnum = Z_OK;
    const char* msg = ::gzerror(gz, &errnum);
    // Z_BUF_ERROR with a short read is zlib's "unexpected end of file": a truncated stream.
    if (got < 0 || (errnum != Z_OK && errnum != Z_STREAM_END)) {
      fail(path_, std::string("is corrupt or truncated gzip data: ") + (msg ? msg : "unknown zlib error"));
    }
    return static_cast<size_t>(got);
  }
  for (;;) {
    ssize_t got = ::read(fd_, dst, n);
    if (got >= 0) return static_cast<size_t>(got);
    int err = errno;
    if (err != EINTR) fail(path_, std::string("cannot be read: ") + std::strerror(err));
  }
}

size_t FileReader::read_full(char* dst, size_t n) {
  size_t total = 0;
  while (total < n) {
    size_t got = read(dst + total, n - total);
    if (got == 0) break;
    total += got;
  }
  return total;
}

}  // namespace pcmoe::data
