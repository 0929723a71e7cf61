// Tests of decode()'s rejections: every failure class of PROTOCOL.md section 5 with its
// ErrorCode (frames and tag, header structure, type and version, fields, limits, tensors).
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>

#include "codec_test_util.h"

using namespace pcmoe;
using namespace pcmoe::proto;
using namespace pcmoe::test;

TEST_CASE("frames and tag are checked", "[unit][proto]") {
  auto frames = encode(sample<Heartbeat>());
  CHECK(code_of({}) == ErrorCode::malformed);
  CHECK(code_of({frames[0]}) == ErrorCode::malformed);
  auto tagged = [&](const std::string& tag) {
    auto f = frames;
    f[0] = Blob::from_string(tag);
    return f;
  };
  CHECK(code_of(tagged("PCMOE/2")) == ErrorCode::bad_version);
  CHECK(code_of(tagged("PCMOE/12")) == ErrorCode::bad_version);
  CHECK(code_of(tagged("PCMOE/x")) == ErrorCode::malformed);
  CHECK(code_of(tagged("PCMOE/1 ")) == ErrorCode::malformed);
  CHECK(code_of(tagged("")) == ErrorCode::malformed);
  CHECK(code_of(tagged(std::string("\xff\x00garbage", 9))) == ErrorCode::malformed);
}

TEST_CASE("the header must be one msgpack map within the size limit", "[unit][proto]") {
  auto frames = encode(sample<Heartbeat>());
  auto with_header = [&](Blob h) {
    auto f = frames;
    f[1] = std::move(h);
    return f;
  };
  CHECK(code_of(with_header(Blob::from_string(""))) == ErrorCode::malformed);
  CHECK(code_of(with_header(header_of([](Packer& pk) { pk.pack_array(0); }))) == ErrorCode::malformed);
  CHECK(code_of(with_header(Blob::from_string("\xc1"))) == ErrorCode::malformed);
  std::string h = frames[1].to_string();
  CHECK(code_of(with_header(Blob::from_string(h.substr(0, h.size() - 1)))) == ErrorCode::malformed);
  CHECK(code_of(with_header(Blob::from_string(h + "\x01"))) == ErrorCode::malformed);
  // A map declaring 2^32-1 entries in 5 bytes: rejected before anything is reserved.
  CHECK(code_of(with_header(Blob::from_string("\xdf\xff\xff\xff\xff"))) == ErrorCode::malformed);
  Limits small;
  small.max_header_bytes = 8;
  CHECK(code_of(frames, small) == ErrorCode::too_large);
  // Keys must be strings, once each.
  CHECK(code_of(with_header(header_of([](Packer& pk) {
          pk.pack_map(1);
          pk.pack(1);
          pk.pack(2);
        }))) == ErrorCode::malformed);
  auto twice = header_of([&](Packer& pk) {
    pk.pack_map(5);
    pk.pack("t"), pk.pack(9), pk.pack("v"), pk.pack(0), pk.pack("seq"), pk.pack(1);
    pk.pack("step"), pk.pack(2), pk.pack("seq"), pk.pack(3);
  });
  CHECK(code_of(with_header(twice)) == ErrorCode::bad_field);
}

TEST_CASE("maps are bounded in keys and key length", "[unit][proto]") {
  auto frames = encode(sample<Heartbeat>());
  CHECK(code_of(with_field(frames, std::string(300, 'k'), [](Packer& pk) { pk.pack(1); })) ==
        ErrorCode::too_large);
  auto many = header_of([](Packer& pk) {
    pk.pack_map(300);
    for (int i = 0; i < 300; ++i) pk.pack("k" + std::to_string(i)), pk.pack(i);
  });
  frames[1] = many;
  CHECK(code_of(frames) == ErrorCode::too_large);
}

TEST_CASE("type and version keys", "[unit][proto]") {
  auto frames = encode(sample<Heartbeat>());
  CHECK(code_of(with_field(frames, "t", [](Packer& pk) { pk.pack(99); })) == ErrorCode::unknown_type);
  CHECK(code_of(with_field(frames, "t", [](Packer& pk) { pk.pack(0); })) == ErrorCode::unknown_type);
  CHECK(code_of(with_field(frames, "t", [](Packer& pk) { pk.pack(29); })) == ErrorCode::unknown_type);
  CHECK(code_of(with_field(frames, "t", [](Packer& pk) { pk.pack("heartbeat"); })) == ErrorCode::bad_field);
  CHECK(code_of(with_field(frames, "t")) == ErrorCode::bad_field);
  CHECK(code_of(with_field(frames, "v")) == ErrorCode::bad_field);
  CHECK(code_of(with_field(frames, "v", [](Packer& pk) { pk.pack(-1); })) == ErrorCode::bad_field);
}

TEST_CASE("missing, wrong-typed and out-of-range fields are bad_field naming the field", "[unit][proto]") {
  auto end = encode(sample<StepEnd>());
  CHECK(code_of(with_field(end, "step")) == ErrorCode::bad_field);
  CHECK_THAT(reason_of(with_field(end, "step")), Catch::Contains("'step'"));
  CHECK_THAT(reason_of(with_field(end, "req", [](Packer& pk) { pk.pack(5); })), Catch::Contains("'req'"));
  CHECK(code_of(with_field(end, "step", [](Packer& pk) { pk.pack(-5); })) == ErrorCode::bad_field);
  CHECK(code_of(with_field(end, "step", [](Packer& pk) { pk.pack(1.5); })) == ErrorCode::bad_field);
  CHECK(code_of(with_field(end, "step", [](Packer& pk) { pk.pack(uint64_t(1) << 63); })) ==
        ErrorCode::bad_field);
  CHECK(code_of(with_field(end, "clip", [](Packer& pk) { pk.pack(std::nan("")); })) == ErrorCode::bad_field);
  CHECK(code_of(with_field(end, "clip", [](Packer& pk) { pk.pack(HUGE_VAL); })) == ErrorCode::bad_field);
  CHECK(code_of(with_field(end, "clip", [](Packer& pk) { pk.pack(2); })) == ErrorCode::ok);  // host clamps

  auto rej = encode(sample<Reject>());
  CHECK(code_of(with_field(rej, "code", [](Packer& pk) { pk.pack(70000); })) == ErrorCode::bad_field);
  CHECK(code_of(with_field(rej, "code", [](Packer& pk) { pk.pack(true); })) == ErrorCode::bad_field);
  CHECK(code_of(with_field(encode(sample<Turn>()), "nst", [](Packer& pk) { pk.pack(0); })) ==
        ErrorCode::bad_field);
  auto fwd = encode(sample<ExpertForward>());
  CHECK_THAT(reason_of(with_field(fwd, "mode", [](Packer& pk) { pk.pack(2); })), Catch::Contains("'mode'"));
  CHECK(code_of(with_field(fwd, "layer", [](Packer& pk) { pk.pack(uint64_t(1) << 32); })) ==
        ErrorCode::bad_field);
  auto load = encode(sample<ExpertLoad>());
  CHECK(code_of(with_field(load, "alive", [](Packer& pk) {
          pk.pack(std::vector<int>{1, 2});
        })) == ErrorCode::bad_field);
  CHECK(code_of(with_field(load, "lrun", [](Packer& pk) {
          pk.pack(std::vector<std::vector<double>>{{0.5, std::nan("")}});
        })) == ErrorCode::bad_field);
  auto rep = encode(sample<StepReport>());
  CHECK(code_of(with_field(rep, "gate", [](Packer& pk) {
          pk.pack(std::vector<std::vector<double>>{{0.5}});
        })) == ErrorCode::bad_field);
  CHECK(code_of(with_field(rep, "loss", [](Packer& pk) { pk.pack(std::nan("")); })) == ErrorCode::ok);
  auto dir = encode(sample<Directory>());
  auto bad_entry = with_field(dir, "dir", [](Packer& pk) {
    pk.pack_array(1);
    pk.pack_map(4);
    pk.pack("pid"), pk.pack("x"), pk.pack("idx"), pk.pack(0), pk.pack("ep"), pk.pack(""), pk.pack("ckey"),
        pk.pack("");
  });
  CHECK_THAT(reason_of(bad_entry), Catch::Contains("dir[0].alive"));
  auto welcome = encode(sample<Welcome>());
  CHECK(code_of(with_field(welcome, "place", [](Packer& pk) {
          pk.pack(std::vector<std::vector<int>>{{0, 1}});
        })) == ErrorCode::bad_field);
}

TEST_CASE("size limits on strings, arrays and tensor counts", "[unit][proto]") {
  Limits lim;
  lim.max_string_bytes = 4;
  CHECK(code_of(encode(sample<Stop>()), lim) == ErrorCode::too_large);
  lim = {};
  lim.max_array_len = 2;
  CHECK(code_of(encode(sample<StepReport>()), lim) == ErrorCode::too_large);
  lim = {};
  lim.max_tensors = 1;
  CHECK(code_of(encode(sample<Snapshot>()), lim) == ErrorCode::too_large);
  lim = {};
  lim.max_frame_bytes = 16;
  CHECK(code_of(encode(sample<ExpertForward>()), lim) == ErrorCode::too_large);
  // An array declaring more elements than bytes remain is malformed (nothing reserved).
  auto frames = with_field(encode(sample<Welcome>()), "moe", [](Packer& pk) { pk.pack_array(1u << 30); });
  CHECK(code_of(frames) == ErrorCode::malformed);
}

TEST_CASE("tensor frames must match the tensors the header declares", "[unit][proto]") {
  auto frames = encode(sample<ExpertForward>());
  auto more = frames;
  more.push_back(frames[3]);
  CHECK(code_of(more) == ErrorCode::malformed);
  auto fewer = frames;
  fewer.pop_back();
  CHECK(code_of(fewer) == ErrorCode::malformed);
  auto short_frame = frames;
  short_frame[3] = Blob::copy_of(frames[3].data, frames[3].size - 2);
  CHECK(code_of(short_frame) == ErrorCode::bad_shape);
  // Snapshot: declared tensor count beyond the frames.
  auto snap = with_field(encode(sample<Snapshot>()), "ts", [](Packer& pk) { pk.pack_array(3); });
  CHECK(code_of(snap) == ErrorCode::malformed);
  CHECK(code_of(with_field(encode(sample<Snapshot>()), "names", [](Packer& pk) {
          pk.pack(std::vector<std::string>{"a"});
        })) == ErrorCode::bad_field);
  // Descriptor shape errors.
  auto desc = [&](const std::function<void(Packer&)>& f) { return code_of(with_field(frames, "rows", f)); };
  CHECK(desc([](Packer& pk) { pk.pack(std::vector<int>{2}); }) == ErrorCode::bad_field);
  CHECK(desc([](Packer& pk) {
          pk.pack_array(2), pk.pack(2), pk.pack(std::vector<int64_t>{-3, 4});
        }) == ErrorCode::bad_shape);
  CHECK(desc([](Packer& pk) { pk.pack_array(2), pk.pack(2), pk.pack(std::vector<int64_t>(9, 1)); }) ==
        ErrorCode::bad_shape);
  CHECK(desc([](Packer& pk) {
          pk.pack_array(2), pk.pack(2), pk.pack(std::vector<int64_t>{int64_t(1) << 40, int64_t(1) << 40});
        }) == ErrorCode::too_large);
  CHECK(desc([](Packer& pk) {
          pk.pack_array(2), pk.pack(42), pk.pack(std::vector<int64_t>{3, 4});
        }) == ErrorCode::bad_dtype);
}

TEST_CASE("tensor dtypes are checked per role", "[unit][proto]") {
  CHECK(code_of(encode(forward(3, 4, DType::i32))) == ErrorCode::bad_dtype);
  CHECK(code_of(encode(forward(3, 4, DType::f64))) == ErrorCode::bad_dtype);
  CHECK(code_of(encode(forward(3, 4, DType::bf16))) == ErrorCode::ok);
  CHECK(code_of(encode(forward(3, 4, DType::f16))) == ErrorCode::ok);
  ExpertForward f = forward(2, 4);
  f.expert_ids = make_f32({2}, {1.0f, 0.0f});
  CHECK(code_of(encode(f)) == ErrorCode::bad_dtype);
  int64_t ids64[2] = {1, 0};
  f.expert_ids = make_tensor(DType::i64, {2}, ids64, sizeof(ids64));
  CHECK(code_of(encode(f)) == ErrorCode::bad_dtype);
  int16_t ids16[2] = {1, 0};
  f.expert_ids = make_tensor(DType::i16, {2}, ids16, sizeof(ids16));
  CHECK(code_of(encode(f)) == ErrorCode::ok);
  Snapshot s = sample<Snapshot>();
  s.tensors[1] = make_i32({1}, {3});
  CHECK(code_of(encode(s)) == ErrorCode::bad_dtype);
  double p64[2] = {1.0, 2.0};
  s.tensors[1] = make_tensor(DType::f64, {2}, p64, sizeof(p64));
  CHECK(code_of(encode(s)) == ErrorCode::ok);
}

TEST_CASE("activation shapes: 2-D, d_model width, row limits, ids per row", "[unit][proto]") {
  Limits lim;
  lim.d_model = 4;
  CHECK(code_of(encode(forward(3, 4)), lim) == ErrorCode::ok);
  CHECK(code_of(encode(forward(3, 5)), lim) == ErrorCode::bad_shape);
  lim.max_rows = 2;
  CHECK(code_of(encode(forward(3, 4)), lim) == ErrorCode::too_large);
  ExpertForward f = forward(3, 4);
  f.expert_ids = make_i32({2}, {1, 1});
  CHECK(code_of(encode(f)) == ErrorCode::bad_shape);
  f = forward(3, 4);
  std::vector<float> cube(24, 0.0f);
  f.rows = make_f32({2, 3, 4}, cube);
  CHECK(code_of(encode(f)) == ErrorCode::bad_shape);
  ExpertBackward b = sample<ExpertBackward>();
  b.grad_outputs = make_f32({4}, {1, 2, 3, 4});
  CHECK(code_of(encode(b)) == ErrorCode::bad_shape);
  f = forward(3, 4);
  f.expert_ids = make_i32({3}, {0, -1, 2});
  CHECK(code_of(encode(f)) == ErrorCode::bad_field);
  int16_t neg16[3] = {0, 1, -7};
  f.expert_ids = make_tensor(DType::i16, {3}, neg16, sizeof(neg16));
  CHECK(code_of(encode(f)) == ErrorCode::bad_field);
  CHECK(code_of(encode(forward(0, 4))) == ErrorCode::ok);  // empty batch is well-formed
}

TEST_CASE("NaN and Inf are rejected in every float dtype", "[unit][proto]") {
  auto poisoned = [](DType dt, size_t at, uint64_t bits) {
    ExpertForward f = forward(4, 8, dt);
    std::vector<uint8_t> bytes(f.rows.data.data, f.rows.data.data + f.rows.data.size);
    std::memcpy(bytes.data() + at * dtype_size(dt), &bits, dtype_size(dt));
    f.rows = make_tensor(dt, {4, 8}, bytes.data(), bytes.size());
    return code_of(encode(f));
  };
  CHECK(poisoned(DType::f32, 31, 0x7fc00000) == ErrorCode::non_finite);  // NaN
  CHECK(poisoned(DType::f32, 0, 0xff800000) == ErrorCode::non_finite);   // -Inf
  CHECK(poisoned(DType::f32, 5, 0x7f7fffff) == ErrorCode::ok);           // max finite
  CHECK(poisoned(DType::bf16, 17, 0x7fc1) == ErrorCode::non_finite);
  CHECK(poisoned(DType::bf16, 17, 0x7f80) == ErrorCode::non_finite);
  CHECK(poisoned(DType::bf16, 17, 0x7f7f) == ErrorCode::ok);
  CHECK(poisoned(DType::f16, 3, 0x7c00) == ErrorCode::non_finite);
  CHECK(poisoned(DType::f16, 3, 0xfe00) == ErrorCode::non_finite);
  CHECK(poisoned(DType::f16, 3, 0x7bff) == ErrorCode::ok);
  Snapshot s = sample<Snapshot>();
  double p64[2] = {1.0, std::nan("")};
  s.tensors[1] = make_tensor(DType::f64, {2}, p64, sizeof(p64));
  CHECK(code_of(encode(s)) == ErrorCode::non_finite);
  // Large tensor, the bad value in the last block.
  std::vector<float> big(100003, 1.0f);
  big.back() = INFINITY;
  CHECK(first_non_finite(DType::f32, reinterpret_cast<const uint8_t*>(big.data()), big.size() * 4) ==
        big.size() - 1);
  big.back() = 1.0f;
  CHECK_FALSE(first_non_finite(DType::f32, reinterpret_cast<const uint8_t*>(big.data()), big.size() * 4));
}
