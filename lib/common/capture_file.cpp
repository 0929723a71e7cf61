// The audit capture file (see capture_file.h).
#include "common/capture_file.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/error.h"
#include "common/fs.h"
#include "common/log.h"

namespace pcmoe {

namespace {

constexpr char kMagic[] = "PCMOECAP1";
constexpr size_t kMagicLen = sizeof(kMagic) - 1;
constexpr uint64_t kMaxRecordBytes = 1ull << 32;  // 4 GiB: anything larger is damage

void write_all(int fd, const void* data, size_t n, const std::string& path) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) throw Error(fmt::format("{}: write failed: {}", path, std::strerror(errno)));
    p += w;
    n -= static_cast<size_t>(w);
  }
}

TensorFile to_tensor_file(const CaptureRecord& r) {
  TensorFile f;
  f.meta = {{"side", r.side},
            {"self", r.self},
            {"self_index", std::to_string(r.self_index)},
            {"peer", r.peer},
            {"step", std::to_string(r.step)},
            {"layer", std::to_string(r.layer)},
            {"rid", std::to_string(r.rid)}};
  f.tensors = r.tensors;
  return f;
}

int64_t meta_int(const TensorFile& f, const std::string& key, const std::string& what) {
  const std::string& v = f.meta_at(key);
  try {
    size_t used = 0;
    const long long x = std::stoll(v, &used);
    if (used == v.size()) return x;
  } catch (const std::exception&) {
  }
  throw DataError(fmt::format("{}: meta '{}' is not an integer: '{}'", what, key, v));
}

}  // namespace

const RawTensor* CaptureRecord::find(const std::string& name) const {
  for (const auto& t : tensors) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

CaptureWriter::CaptureWriter(std::string path, uint64_t max_bytes)
    : path_(std::move(path)), max_bytes_(max_bytes) {
  fs::make_dirs(fs::dirname(path_));
  fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd_ < 0)
    throw Error(fmt::format("{}: cannot create the capture file: {}", path_, std::strerror(errno)));
  write_all(fd_, kMagic, kMagicLen, path_);
  bytes_ = kMagicLen;
}

CaptureWriter::~CaptureWriter() {
  if (fd_ >= 0) ::close(fd_);
}

bool CaptureWriter::append(const CaptureRecord& r) {
  const std::string blob = encode_tensor_file(to_tensor_file(r));
  std::lock_guard<std::mutex> lock(mu_);
  if (full_) return false;
  if (bytes_ + 8 + blob.size() > max_bytes_) {
    full_ = true;
    PCMOE_WARN("audit.capture_full").kv("path", path_).kv("records", records_).kv("bytes", bytes_);
    return false;
  }
  const uint64_t n = blob.size();
  write_all(fd_, &n, sizeof n, path_);
  write_all(fd_, blob.data(), blob.size(), path_);
  bytes_ += 8 + n;
  records_ += 1;
  return true;
}

uint64_t CaptureWriter::records() const {
  std::lock_guard<std::mutex> lock(mu_);
  return records_;
}

uint64_t CaptureWriter::bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return bytes_;
}

std::vector<CaptureRecord> read_capture(const std::string& path) {
  const std::string data = fs::read_file(path);
  if (data.size() < kMagicLen || data.compare(0, kMagicLen, kMagic) != 0)
    throw DataError(fmt::format("{}: not a pcmoe capture file (audit.capture writes them)", path));
  std::vector<CaptureRecord> out;
  size_t at = kMagicLen;
  while (at + 8 <= data.size()) {
    uint64_t n = 0;
    std::memcpy(&n, data.data() + at, 8);
    if (n == 0 || n > kMaxRecordBytes)
      throw DataError(fmt::format("{}: record {} has an impossible length {}", path, out.size(), n));
    if (at + 8 + n > data.size()) break;  // the writer was stopped mid-record: the rest is lost
    const std::string what = fmt::format("{}: record {}", path, out.size());
    TensorFile f = decode_tensor_file(data.substr(at + 8, n), what);
    CaptureRecord r;
    r.side = f.meta_at("side");
    r.self = f.meta_at("self");
    r.self_index = meta_int(f, "self_index", what);
    r.peer = f.meta_at("peer");
    r.step = meta_int(f, "step", what);
    r.layer = meta_int(f, "layer", what);
    r.rid = static_cast<uint64_t>(meta_int(f, "rid", what));
    r.tensors = std::move(f.tensors);
    if (r.side != "received" && r.side != "sent")
      throw DataError(fmt::format("{}: side '{}' (expected received or sent)", what, r.side));
    out.push_back(std::move(r));
    at += 8 + n;
  }
  return out;
}

}  // namespace pcmoe
