// Owns the encoding side of the field visitor (fields.h): packs fields into a msgpack map and
// collects tensor frames in order. Internal to lib/proto; used by codec.cpp. Not thread-safe.
// Throws pcmoe::Error if a tensor's bytes do not match its dtype and shape (a caller bug).
#pragma once

#include <msgpack.hpp>
#include <string>
#include <vector>

#include "proto/fields.h"

namespace pcmoe::proto {

class FieldWriter {
 public:
  // Tensor frames are appended to `frames` in visiting order.
  explicit FieldWriter(std::vector<Blob>& frames) : frames_(frames), pk_(body_) {}

  // The map: header count followed by the packed entries.
  std::string finish() const;
  // Adds an entry outside the field lists ("t", "v").
  void raw_uint(const char* key, uint64_t x) {
    key_(key);
    pk_.pack_uint64(x);
  }

  void str(const char* key, const std::string& s) {
    key_(key);
    pk_.pack(s);
  }
  void boolean(const char* key, bool b) {
    key_(key);
    b ? pk_.pack_true() : pk_.pack_false();
  }
  template <class T>
  void uint(const char* key, const T& x, uint64_t = 0, uint64_t = 0) {
    key_(key);
    pk_.pack_uint64(x);
  }
  void int64(const char* key, int64_t x, int64_t) {
    key_(key);
    pk_.pack_int64(x);
  }
  void real(const char* key, double x, Real) {
    key_(key);
    pk_.pack_double(x);
  }
  template <class E>
  void enumeration(const char* key, const E& e, uint64_t) {
    key_(key);
    pk_.pack_uint64(static_cast<uint64_t>(e));
  }
  template <class T>
  void uints(const char* key, const std::vector<T>& xs, uint64_t = 0) {
    key_(key);
    pack_uints(xs);
  }
  template <class T>
  void optional_uint(const char* key, const T& x) {
    if (x != 0) uint(key, x);
  }
  template <class T>
  void optional_uints(const char* key, const std::vector<T>& xs) {
    if (!xs.empty()) uints(key, xs);
  }
  void optional_str(const char* key, const std::string& s) {
    if (!s.empty()) str(key, s);
  }
  template <class T>
  void uint_matrix(const char* key, const std::vector<std::vector<T>>& xss) {
    key_(key);
    pk_.pack_array(static_cast<uint32_t>(xss.size()));
    for (const auto& xs : xss) pack_uints(xs);
  }
  void real_matrix(const char* key, const std::vector<std::vector<double>>& xss, Real);
  void strs(const char* key, const std::vector<std::string>& xs);
  void tensor(const char* key, const WireTensor& t, TensorRole);
  void tensors(const char* key, const std::vector<WireTensor>& ts, TensorRole);
  template <class E>
  void entries(const char* key, const std::vector<E>& es) {
    key_(key);
    pk_.pack_array(static_cast<uint32_t>(es.size()));
    for (const auto& e : es) {
      FieldWriter sub(frames_);
      fields(sub, e, Of<E>{});
      std::string map = sub.finish();
      body_.write(map.data(), map.size());
    }
  }

 private:
  void key_(const char* key) {
    ++n_;
    pk_.pack(std::string_view(key));
  }
  template <class T>
  void pack_uints(const std::vector<T>& xs) {
    pk_.pack_array(static_cast<uint32_t>(xs.size()));
    for (T x : xs) pk_.pack_uint64(x);
  }
  void pack_desc(const WireTensor& t);

  std::vector<Blob>& frames_;
  msgpack::sbuffer body_;
  msgpack::packer<msgpack::sbuffer> pk_;
  uint32_t n_ = 0;
};

}  // namespace pcmoe::proto
