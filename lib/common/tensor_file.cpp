// Tensor container file format (see tensor_file.h).
#include "common/tensor_file.h"

#include <cstring>
#include <functional>

#include "common/error.h"
#include "common/fs.h"

namespace pcmoe {
namespace {

constexpr char kMagic[8] = {'P', 'C', 'M', 'O', 'E', 'T', 'F', '1'};
constexpr size_t kAlign = 64;
constexpr uint64_t kMaxHeader = 64ull << 20;

uint64_t checksum_update(uint64_t h, const char* p, size_t n) {
  // 8 bytes per round, then the tail; a multiply-xorshift mix. Detects truncation and corruption.
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    h = (h ^ w) * 0x9E3779B97F4A7C15ULL;
    h ^= h >> 29;
  }
  for (; i < n; ++i) {
    h = (h ^ static_cast<unsigned char>(p[i])) * 0x100000001B3ULL;
  }
  return h;
}

template <class T>
void put(std::string& out, T v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof v);
}
void put_str(std::string& out, const std::string& s) {
  put<uint32_t>(out, static_cast<uint32_t>(s.size()));
  out += s;
}

struct Reader {
  const std::string& buf;
  size_t pos;
  size_t end;
  const std::string& what;

  template <class T>
  T get() {
    if (end - pos < sizeof(T)) throw DataError(what + ": truncated header");
    T v;
    std::memcpy(&v, buf.data() + pos, sizeof v);
    pos += sizeof v;
    return v;
  }
  std::string get_str() {
    uint32_t n = get<uint32_t>();
    if (end - pos < n) throw DataError(what + ": truncated header string");
    std::string s = buf.substr(pos, n);
    pos += n;
    return s;
  }
};

std::string build_header(const TensorFile& file, std::vector<uint64_t>& offsets) {
  std::string h;
  put<uint32_t>(h, static_cast<uint32_t>(file.meta.size()));
  for (const auto& [k, v] : file.meta) {
    put_str(h, k);
    put_str(h, v);
  }
  put<uint32_t>(h, static_cast<uint32_t>(file.tensors.size()));
  uint64_t off = 0;
  for (const auto& t : file.tensors) {
    PCMOE_CHECK(static_cast<int64_t>(t.bytes.size()) == t.numel() * static_cast<int64_t>(dtype_size(t.dtype)),
                "tensor '{}': {} bytes do not match its shape and dtype", t.name, t.bytes.size());
    put_str(h, t.name);
    put<uint8_t>(h, static_cast<uint8_t>(t.dtype));
    put<uint8_t>(h, static_cast<uint8_t>(t.shape.size()));
    for (int64_t d : t.shape) put<int64_t>(h, d);
    put<uint64_t>(h, off);
    put<uint64_t>(h, t.bytes.size());
    offsets.push_back(off);
    off += (t.bytes.size() + kAlign - 1) / kAlign * kAlign;
  }
  return h;
}

size_t padded(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

}  // namespace

int64_t RawTensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

const RawTensor* TensorFile::find(const std::string& name) const {
  for (const auto& t : tensors) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

const std::string& TensorFile::meta_at(const std::string& key) const {
  auto it = meta.find(key);
  if (it == meta.end()) throw DataError("tensor file has no metadata key '" + key + "'");
  return it->second;
}

// Streams the whole file through `write`: one code path for files and in-memory buffers.
static void serialize(const TensorFile& file, const std::function<void(const void*, size_t)>& write) {
  std::vector<uint64_t> offsets;
  std::string header = build_header(file, offsets);
  uint64_t h = 0xcbf29ce484222325ULL;
  std::string prefix(kMagic, sizeof kMagic);
  put<uint64_t>(prefix, header.size());
  prefix += header;
  prefix.resize(padded(prefix.size()), '\0');
  h = checksum_update(h, prefix.data(), prefix.size());
  write(prefix.data(), prefix.size());
  static const char zeros[kAlign] = {};
  for (const auto& t : file.tensors) {
    h = checksum_update(h, t.bytes.data(), t.bytes.size());
    write(t.bytes.data(), t.bytes.size());
    size_t pad = padded(t.bytes.size()) - t.bytes.size();
    if (pad) write(zeros, pad);
  }
  write(&h, sizeof h);
}

std::string encode_tensor_file(const TensorFile& file) {
  std::string out;
  serialize(file, [&](const void* p, size_t n) { out.append(static_cast<const char*>(p), n); });
  return out;
}

void write_tensor_file(const std::string& path, const TensorFile& file) {
  fs::atomic_write_stream(path, [&](const auto& write) { serialize(file, write); });
}

TensorFile decode_tensor_file(const std::string& buf, const std::string& what) {
  if (buf.size() < sizeof kMagic + 16 || std::memcmp(buf.data(), kMagic, sizeof kMagic) != 0) {
    throw DataError(what + ": not a pcmoe tensor file (bad magic or too short)");
  }
  Reader r{buf, sizeof kMagic, buf.size() - 8, what};
  uint64_t header_bytes = r.get<uint64_t>();
  if (header_bytes > kMaxHeader || header_bytes > r.end - r.pos)
    throw DataError(what + ": header size out of range");
  size_t header_end = r.pos + header_bytes;
  size_t data_start = padded(header_end);
  if (data_start > r.end) throw DataError(what + ": truncated before data");

  uint64_t h = checksum_update(0xcbf29ce484222325ULL, buf.data(), data_start);
  TensorFile file;
  r.end = header_end;
  uint32_t n_meta = r.get<uint32_t>();
  for (uint32_t i = 0; i < n_meta; ++i) {
    std::string k = r.get_str();
    file.meta[k] = r.get_str();
  }
  uint32_t n_tensors = r.get<uint32_t>();
  size_t data_end = buf.size() - 8;
  uint64_t expected_off = 0;
  for (uint32_t i = 0; i < n_tensors; ++i) {
    RawTensor t;
    t.name = r.get_str();
    auto dt = dtype_from_code(r.get<uint8_t>());
    if (!dt) throw DataError(what + ": tensor '" + t.name + "' has an unknown dtype code");
    t.dtype = *dt;
    uint8_t ndim = r.get<uint8_t>();
    for (uint8_t d = 0; d < ndim; ++d) {
      int64_t v = r.get<int64_t>();
      if (v < 0 || v > (int64_t{1} << 40))
        throw DataError(what + ": tensor '" + t.name + "' has a bad dimension");
      t.shape.push_back(v);
    }
    uint64_t off = r.get<uint64_t>();
    uint64_t nbytes = r.get<uint64_t>();
    if (nbytes != static_cast<uint64_t>(t.numel()) * dtype_size(t.dtype)) {
      throw DataError(what + ": tensor '" + t.name + "' size does not match its shape");
    }
    if (off != expected_off || off > data_end - data_start || nbytes > data_end - data_start - off) {
      throw DataError(what + ": tensor '" + t.name + "' lies outside the file (truncated?)");
    }
    t.bytes = buf.substr(data_start + off, nbytes);
    expected_off += padded(nbytes);
    file.tensors.push_back(std::move(t));
  }
  // Checksum over the data region exactly as written (each tensor then its padding).
  size_t pos = data_start;
  for (const auto& t : file.tensors) {
    h = checksum_update(h, t.bytes.data(), t.bytes.size());
    pos += padded(t.bytes.size());
  }
  if (pos != data_end) throw DataError(what + ": data region size mismatch (truncated or corrupt)");
  uint64_t stored;
  std::memcpy(&stored, buf.data() + data_end, 8);
  if (stored != h) throw DataError(what + ": checksum mismatch (corrupt file)");
  return file;
}

TensorFile read_tensor_file(const std::string& path) {
  std::string buf;
  try {
    buf = fs::read_file(path);
  } catch (const Error& e) {
    throw DataError(e.what());
  }
  return decode_tensor_file(buf, path);
}

}  // namespace pcmoe
