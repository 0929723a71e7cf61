// fp8 tensors on the wire (protocol 1.1): [dtype, shape, block] descriptors with a scales frame;
// the decoder's checks (codes that are NaN/Inf, scales that are not finite, > 0 and normal, a block
// that does not divide the rows, a missing or short scales frame, fp8 outside activations, a
// scale block on another dtype); and the optional reply timeline.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>

#include "codec_test_util.h"
#include "proto/wire_tensor.h"

using namespace pcmoe;
using namespace pcmoe::proto;
using namespace pcmoe::test;

namespace {

WireTensor fp8(DType dt, int64_t rows, int64_t cols, uint32_t block, std::vector<float> scales = {},
               uint8_t code = 0x38) {
  std::vector<uint8_t> q(static_cast<size_t>(rows * cols), code);
  if (scales.empty()) scales.assign(static_cast<size_t>(rows * cols / block), 0.5f);
  return wrap_fp8(dt, {rows, cols}, block, Blob::copy_of(q.data(), q.size()),
                  Blob::copy_of(scales.data(), scales.size() * sizeof(float)));
}

ExpertForward forward_fp8(WireTensor rows) {
  ExpertForward f;
  f.request_id = 9;
  f.requester = "a";
  f.layer = 1;
  std::vector<int32_t> ids(static_cast<size_t>(rows.shape[0]), 1);
  f.expert_ids = make_i32({rows.shape[0]}, ids);
  f.rows = std::move(rows);
  return f;
}

}  // namespace

TEST_CASE("fp8 tensors round-trip with their scales, per row and per block", "[unit][proto]") {
  for (DType dt : {DType::f8e4m3, DType::f8e5m2}) {
    for (uint32_t block : {8u, 4u}) {
      auto f = forward_fp8(fp8(dt, 3, 8, block, {}, 0x3a));
      auto frames = encode(f);
      CHECK(frames.size() == 2 + 3);  // ids, codes, scales
      Message back = decode(frames);
      CHECK(message_diff(f, back) == "");
      const auto& rows = std::get<ExpertForward>(back).rows;
      CHECK(rows.scale_block == block);
      CHECK(rows.scales.size == 3 * (8 / block) * sizeof(float));
      CHECK(describe_tensor(rows) == fmt::format("{}[3,8]/{}", dtype_name(dt), block));
    }
  }
}

TEST_CASE("fp8 decoding refuses bad codes, bad scales and bad layouts", "[unit][proto]") {
  // Codes: e4m3 NaN (S.1111.111), e5m2 Inf and NaN (exponent 31).
  CHECK(code_of(encode(forward_fp8(fp8(DType::f8e4m3, 2, 4, 4, {}, 0x7f)))) == ErrorCode::non_finite);
  CHECK(code_of(encode(forward_fp8(fp8(DType::f8e4m3, 2, 4, 4, {}, 0xff)))) == ErrorCode::non_finite);
  CHECK(code_of(encode(forward_fp8(fp8(DType::f8e4m3, 2, 4, 4, {}, 0x7e)))) == ErrorCode::ok);  // 448
  CHECK(code_of(encode(forward_fp8(fp8(DType::f8e5m2, 2, 4, 4, {}, 0x7c)))) == ErrorCode::non_finite);
  CHECK(code_of(encode(forward_fp8(fp8(DType::f8e5m2, 2, 4, 4, {}, 0xfd)))) == ErrorCode::non_finite);
  CHECK(code_of(encode(forward_fp8(fp8(DType::f8e5m2, 2, 4, 4, {}, 0x7b)))) == ErrorCode::ok);
  // Scales: finite, > 0, normal.
  for (float bad : {0.0f, -1.0f, std::nanf(""), INFINITY, std::ldexp(1.0f, -140)}) {
    INFO("scale " << bad);
    const auto frames = encode(forward_fp8(fp8(DType::f8e4m3, 2, 4, 4, {1.0f, bad})));
    CHECK(code_of(frames) == ErrorCode::bad_field);
    CHECK_THAT(reason_of(frames), Catch::Contains("scale 1"));
  }
  // Layout: the scales frame missing, short, or the block not dividing the rows.
  auto frames = encode(forward_fp8(fp8(DType::f8e4m3, 2, 4, 2)));
  auto no_scales = frames;
  no_scales.pop_back();
  CHECK(code_of(no_scales) == ErrorCode::malformed);
  auto short_scales = frames;
  short_scales.back() = Blob::from_string(std::string(4, '\0'));
  CHECK(code_of(short_scales) == ErrorCode::bad_shape);
  auto descriptor = [&](std::vector<uint64_t> desc_tail) {
    return with_field(frames, "rows", [&](Packer& pk) {
      pk.pack_array(static_cast<uint32_t>(2 + desc_tail.size()));
      pk.pack(static_cast<uint64_t>(DType::f8e4m3));
      pk.pack_array(2), pk.pack(2), pk.pack(4);
      for (uint64_t v : desc_tail) pk.pack(v);
    });
  };
  CHECK(code_of(descriptor({2})) == ErrorCode::ok);
  CHECK(code_of(descriptor({3})) == ErrorCode::bad_shape);  // 3 does not divide 4
  CHECK(code_of(descriptor({0})) == ErrorCode::bad_shape);
  CHECK(code_of(descriptor({8})) == ErrorCode::bad_shape);
  CHECK(code_of(descriptor({})) == ErrorCode::bad_field);  // fp8 without a block
  // A block on a dtype that has none.
  auto bf16 = encode(forward(2, 4, DType::bf16));
  CHECK(code_of(with_field(bf16, "rows", [](Packer& pk) {
          pk.pack_array(3);
          pk.pack(static_cast<uint64_t>(DType::bf16));
          pk.pack_array(2), pk.pack(2), pk.pack(4);
          pk.pack(4);
        })) == ErrorCode::bad_field);
  // fp8 is for activations only: not in snapshots.
  Snapshot s = sample<Snapshot>();
  s.tensors[1] = fp8(DType::f8e4m3, 1, 4, 4);
  CHECK(code_of(encode(s)) == ErrorCode::bad_dtype);
}

TEST_CASE("reply timelines are optional (1.1) and round-trip", "[unit][proto]") {
  ExpertForwardReply r;
  r.request_id = 4;
  r.outputs = make_f32({1, 2}, {1.0f, 2.0f});
  Message back = decode(encode(r));
  CHECK(std::get<ExpertForwardReply>(back).timeline.empty());  // absent: as from a 1.0 host
  r.timeline = {10, 20, 1, 2, 3, 4, 5};
  back = decode(encode(r));
  CHECK(std::get<ExpertForwardReply>(back).timeline == r.timeline);
  ExpertBackwardReply b;
  b.request_id = 4;
  b.grad_inputs = make_f32({1, 2}, {1.0f, 2.0f});
  b.timeline = {1, 2, 3};
  back = decode(encode(b));
  CHECK(std::get<ExpertBackwardReply>(back).timeline == b.timeline);
}
