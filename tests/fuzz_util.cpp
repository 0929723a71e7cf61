// Fuzzing helpers (see fuzz_util.h).
#include "fuzz_util.h"

#include <fmt/format.h>
#include <catch2/catch.hpp>
#include <msgpack.hpp>

#include <cmath>
#include <cstring>

namespace pcmoe::test {
namespace {

using Packer = msgpack::packer<msgpack::sbuffer>;

void random_value(Rng& rng, Packer& pk, int depth) {
  switch (rng.below(depth > 3 ? 9 : 12)) {
    case 0:
      pk.pack_nil();
      break;
    case 1:
      rng.below(2) ? pk.pack_true() : pk.pack_false();
      break;
    case 2:
      pk.pack_uint64(rng.next() >> rng.below(64));
      break;
    case 3:
      pk.pack_int64(-static_cast<int64_t>(rng.next() >> (1 + rng.below(63))));
      break;
    case 4:
      pk.pack_double(rng.below(2) ? std::nan("") : (rng.uniform() - 0.5) * 1e6);
      break;
    case 5:
      pk.pack_float(static_cast<float>(rng.uniform()));
      break;
    case 6:
      pk.pack(std::string(rng.below(40), 'x'));
      break;
    case 7: {
      std::string bin(rng.below(16), '\x01');
      pk.pack_bin(static_cast<uint32_t>(bin.size()));
      pk.pack_bin_body(bin.data(), static_cast<uint32_t>(bin.size()));
      break;
    }
    case 8:
      pk.pack_uint64(rng.below(10));
      break;
    case 9:
    case 10: {
      uint32_t n = static_cast<uint32_t>(rng.below(5));
      pk.pack_array(n);
      for (uint32_t i = 0; i < n; ++i) random_value(rng, pk, depth + 1);
      break;
    }
    default: {
      uint32_t n = static_cast<uint32_t>(rng.below(4));
      pk.pack_map(n);
      for (uint32_t i = 0; i < n; ++i) {
        pk.pack(std::string(1, static_cast<char>('a' + rng.below(26))));
        random_value(rng, pk, depth + 1);
      }
    }
  }
}

}  // namespace

void swap_field_type(Rng& rng, Frames& f) {
  if (f.size() < 2) return;
  msgpack::object_handle oh;
  try {
    oh = msgpack::unpack(reinterpret_cast<const char*>(f[1].data), f[1].size);
  } catch (const std::exception&) {
    return;
  }
  if (oh.get().type != msgpack::type::MAP || oh.get().via.map.size == 0) return;
  const auto& map = oh.get().via.map;
  const uint32_t victim = static_cast<uint32_t>(rng.below(map.size));
  const int how = static_cast<int>(rng.below(3));  // 0 replace, 1 drop, 2 duplicate
  msgpack::sbuffer buf;
  Packer pk(buf);
  pk.pack_map(map.size + (how == 1 ? -1 : how == 2 ? 1 : 0));
  for (uint32_t i = 0; i < map.size; ++i) {
    if (i == victim && how == 1) continue;
    pk.pack(map.ptr[i].key);
    if (i == victim && how == 0) {
      random_value(rng, pk, 0);
    } else {
      pk.pack(map.ptr[i].val);
    }
    if (i == victim && how == 2) {
      pk.pack(map.ptr[i].key);
      random_value(rng, pk, 0);
    }
  }
  f[1] = proto::Blob::from_string(std::string(buf.data(), buf.size()));
}

void mutate_bytes(Rng& rng, Frames& f, size_t idx) {
  if (idx >= f.size()) return;
  std::string s = f[idx].to_string();
  if (s.empty()) return;
  static const uint8_t kInteresting[] = {0x00, 0x7f, 0x80, 0xc0, 0xc1, 0xc3, 0xc6, 0xca, 0xcb,
                                         0xcf, 0xd3, 0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0xe0, 0xff};
  switch (rng.below(4)) {
    case 0:  // bit flips
      for (uint64_t n = 1 + rng.below(8); n > 0; --n)
        s[rng.below(s.size())] ^= static_cast<char>(1 << rng.below(8));
      break;
    case 1:  // interesting byte
      s[rng.below(s.size())] = static_cast<char>(kInteresting[rng.below(sizeof(kInteresting))]);
      break;
    case 2: {  // huge declared length: a 32-bit container / string / bin header with a big count
      static const uint8_t kLong[] = {0xdb, 0xc6, 0xdd, 0xdf};
      size_t at = rng.below(s.size());
      std::string huge = {static_cast<char>(kLong[rng.below(4)]), '\x7f', '\xff', '\xff',
                          static_cast<char>(rng.below(256))};
      s.replace(at, std::min(huge.size(), s.size() - at), huge);
      break;
    }
    default:  // truncate
      s.resize(rng.below(s.size()));
  }
  f[idx] = proto::Blob::from_string(std::move(s));
}

void inject_non_finite(Rng& rng, Frames& f) {
  if (f.size() <= 2) return;
  size_t idx = 2 + rng.below(f.size() - 2);
  std::string s = f[idx].to_string();
  if (s.size() < 2) return;
  static const uint32_t kBad32[] = {0x7fc00000, 0x7f800000, 0xff800000};
  static const uint16_t kBad16[] = {0x7fc0, 0x7f80, 0x7c00, 0xfe00};
  size_t at = rng.below(s.size() / 2) * 2;
  if (rng.below(2) && s.size() >= 4) {
    at = rng.below(s.size() / 4) * 4;
    std::memcpy(&s[at], &kBad32[rng.below(3)], 4);
  } else {
    std::memcpy(&s[at], &kBad16[rng.below(4)], 2);
  }
  f[idx] = proto::Blob::from_string(std::move(s));
}

void mutate_frames(Rng& rng, Frames& f) {
  if (f.empty()) return;
  switch (rng.below(5)) {
    case 0:
      f.erase(f.begin() + static_cast<long>(rng.below(f.size())));
      break;
    case 1:
      f.insert(f.begin() + static_cast<long>(rng.below(f.size() + 1)), f[rng.below(f.size())]);
      break;
    case 2:
      std::swap(f[rng.below(f.size())], f[rng.below(f.size())]);
      break;
    case 3:
      f.push_back(proto::Blob::from_string(std::string(rng.below(64), '\0')));
      break;
    default:
      f[0] = proto::Blob::from_string(rng.below(2) ? "PCMOE/2" : "PCMOE/");
  }
}

Frames random_frames(Rng& rng, size_t min_frames) {
  Frames f;
  for (uint64_t n = min_frames + rng.below(6 - min_frames); n > 0; --n) {
    std::string s(rng.below(48), '\0');
    for (auto& c : s) c = static_cast<char>(rng.next());
    f.push_back(proto::Blob::from_string(std::move(s)));
  }
  if (!f.empty() && rng.below(2)) f[0] = proto::Blob::from_string(proto::protocol_tag());
  return f;
}

void ReplyTally::drain(net::Client& client, int timeout_ms, const proto::Limits& limits, const char* who) {
  while (auto in = client.recv(timeout_ms)) {
    ++replies;
    try {
      auto m = proto::decode(in->frames, limits);
      const auto* e = std::get_if<proto::ErrorMsg>(&m);
      ++answers[e ? std::string(proto::error_code_name(static_cast<proto::ErrorCode>(e->code)))
                  : std::string(proto::msg_type_name(proto::type_of(m)))];
    } catch (const proto::DecodeError& e) {
      FAIL(who << " sent something that does not decode: " << e.what());
    }
    timeout_ms = 0;
  }
}

std::string counts_text(const std::map<std::string, uint64_t>& counts) {
  std::string out;
  for (const auto& [k, n] : counts) out += fmt::format(" {}={}", k, n);
  return out;
}

}  // namespace pcmoe::test
