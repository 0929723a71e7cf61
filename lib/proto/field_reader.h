// Owns the decoding side of the field visitor (fields.h): indexes one msgpack map (keys -> value
// offsets, unknown keys kept but ignored), then reads each field the visitor asks for with its
// type and range checks, and attaches tensor frames in order. Internal to lib/proto.
// Every failure throws DecodeError naming the field (nested ones as "dir[2].ep").
// Not thread-safe; the header bytes and frames must outlive the reader.
#pragma once

#include <fmt/format.h>

#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "proto/fields.h"
#include "proto/mp_reader.h"

namespace pcmoe::proto {

// The raw frames after the header, consumed in order by tensor fields.
struct FrameCursor {
  const std::vector<Blob>* frames = nullptr;
  size_t next = 2;
};

class FieldReader {
 public:
  static constexpr uint32_t kMaxKeys = 256;    // keys in one map
  static constexpr size_t kMaxKeyBytes = 256;  // bytes of one key

  // Indexes the map that starts at r's position; r is left just after the map.
  FieldReader(MpReader& r, const Limits& limits, FrameCursor& frames, std::string prefix = "");

  bool has(std::string_view key) const { return find_(key) != nullptr; }

  void str(const char* key, std::string& s);
  void boolean(const char* key, bool& b);
  void int64(const char* key, int64_t& x, int64_t lo);
  void real(const char* key, double& x, Real rule);
  void real_matrix(const char* key, std::vector<std::vector<double>>& xss, Real rule);
  void strs(const char* key, std::vector<std::string>& xs);
  void tensor(const char* key, WireTensor& t, TensorRole role);
  void tensors(const char* key, std::vector<WireTensor>& ts, TensorRole role);

  template <class T>
  void uint(const char* key, T& x, uint64_t lo = 0, uint64_t hi = std::numeric_limits<T>::max()) {
    seek_(key);
    x = static_cast<T>(checked_uint_(name_(key), lo, hi, -1));
  }
  template <class E>
  void enumeration(const char* key, E& e, uint64_t hi) {
    seek_(key);
    e = static_cast<E>(checked_uint_(name_(key), 0, hi, -1));
  }
  template <class T>
  void uints(const char* key, std::vector<T>& xs, uint64_t hi = std::numeric_limits<T>::max()) {
    seek_(key);
    read_uints_(key, xs, hi);
  }
  template <class T>
  void optional_uint(const char* key, T& x) {
    x = 0;
    if (has(key)) uint(key, x);
  }
  template <class T>
  void optional_uints(const char* key, std::vector<T>& xs) {
    xs.clear();
    if (has(key)) uints(key, xs);
  }
  void optional_str(const char* key, std::string& s) {
    s.clear();
    if (has(key)) str(key, s);
  }
  template <class T>
  void uint_matrix(const char* key, std::vector<std::vector<T>>& xss) {
    seek_(key);
    uint32_t n = array_(key);
    xss.clear();  // grown element by element: memory follows the bytes actually parsed
    for (uint32_t i = 0; i < n; ++i) read_uints_(key, xss.emplace_back(), std::numeric_limits<T>::max());
  }
  template <class E>
  void entries(const char* key, std::vector<E>& es) {
    seek_(key);
    uint32_t n = array_(key);
    es.clear();  // grown element by element: a declared count allocates nothing
    for (uint32_t i = 0; i < n; ++i) {
      FieldReader sub(r_, limits_, frames_, fmt::format("{}{}[{}].", prefix_, key, i));
      size_t after = r_.offset();
      fields(sub, es.emplace_back(), Of<E>{});
      r_.seek(after);
    }
  }

 private:
  struct Entry {
    std::string_view key;
    size_t offset;
  };
  const Entry* find_(std::string_view key) const;
  void seek_(const char* key);  // positions r_ at the value; bad_field if missing
  std::string name_(std::string_view key) const { return prefix_ + std::string(key); }
  uint32_t array_(const char* key);  // array header, count checked against max_array_len
  // One unsigned integer in [lo, hi]; `index` >= 0 names an array element in errors.
  uint64_t checked_uint_(const std::string& field, uint64_t lo, uint64_t hi, int64_t index);
  template <class T>
  void read_uints_(const char* key, std::vector<T>& xs, uint64_t hi) {
    xs.resize(array_(key));
    std::string field = name_(key);
    for (size_t i = 0; i < xs.size(); ++i) xs[i] = static_cast<T>(checked_uint_(field, 0, hi, int64_t(i)));
  }
  WireTensor read_tensor_(const std::string& field, TensorRole role);
  // fp8: the descriptor's scale block and the scales frame (checked for size; values by check_tensor).
  void read_scales_(const std::string& field, WireTensor& t);

  MpReader& r_;
  const Limits& limits_;
  FrameCursor& frames_;
  std::string prefix_;
  std::vector<Entry> index_;
};

}  // namespace pcmoe::proto
