// Helpers for the codec tests: decoding outcomes, header rewriting with msgpack, samples.
#pragma once

#include <msgpack.hpp>

#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "proto/codec.h"
#include "proto_test_util.h"

namespace pcmoe::test {
using namespace pcmoe::proto;

using Packer = msgpack::packer<msgpack::sbuffer>;

inline proto::ErrorCode code_of(const std::vector<Blob>& frames, const Limits& limits = {}) {
  try {
    decode(frames, limits);
  } catch (const DecodeError& e) {
    return e.code;
  }
  return ErrorCode::ok;
}

inline std::string reason_of(const std::vector<Blob>& frames, const Limits& limits = {}) {
  try {
    decode(frames, limits);
  } catch (const DecodeError& e) {
    return e.what();
  }
  return "";
}

inline proto::Blob header_of(const std::function<void(Packer&)>& fill) {
  msgpack::sbuffer buf;
  Packer pk(buf);
  fill(pk);
  return Blob::from_string(std::string(buf.data(), buf.size()));
}

// Rewrites header key `key`: removed when `value` is empty, else replaced (or added) by `value`.
inline std::vector<proto::Blob> with_field(std::vector<proto::Blob> frames, const std::string& key,
                                           const std::function<void(Packer&)>& value = nullptr) {
  auto oh = msgpack::unpack(reinterpret_cast<const char*>(frames[1].data), frames[1].size);
  const auto& map = oh.get().via.map;
  frames[1] = header_of([&](Packer& pk) {
    uint32_t n = value ? 1 : 0;
    for (uint32_t i = 0; i < map.size; ++i) n += map.ptr[i].key.as<std::string>() != key;
    pk.pack_map(n);
    for (uint32_t i = 0; i < map.size; ++i) {
      if (map.ptr[i].key.as<std::string>() == key) continue;
      pk.pack(map.ptr[i].key);
      pk.pack(map.ptr[i].val);
    }
    if (value) {
      pk.pack(key);
      value(pk);
    }
  });
  return frames;
}

template <class T>
T sample() {
  for (auto& m : test::golden_messages()) {
    if (auto* x = std::get_if<T>(&m)) return *x;
  }
  throw std::logic_error("no sample");
}

inline proto::ExpertForward forward(int64_t rows, int64_t width, DType dt = DType::f32) {
  ExpertForward f = sample<ExpertForward>();
  std::vector<int32_t> ids(static_cast<size_t>(rows), 1);
  f.expert_ids = make_i32({rows}, ids);
  std::vector<uint8_t> bytes(static_cast<size_t>(rows * width) * dtype_size(dt), 0);
  f.rows = make_tensor(dt, {rows, width}, bytes.data(), bytes.size());
  return f;
}

}  // namespace pcmoe::test
