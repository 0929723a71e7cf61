// Tests of the message codec: round trip of every message type, the frame layout, zero-copy
// decoding, versioning, and the error reply a DecodeError maps to. Rejections: reject_test.cpp.
#include <catch2/catch.hpp>

#include <cmath>
#include <set>

#include "codec_test_util.h"

using namespace pcmoe;
using namespace pcmoe::proto;
using namespace pcmoe::test;

TEST_CASE("every message type round-trips with every field", "[unit][proto]") {
  auto msgs = test::every_type_sample();
  std::set<MsgType> types;
  for (const auto& m : msgs) {
    INFO(describe(m));
    types.insert(type_of(m));
    auto frames = encode(m);
    // Decode from copies: nothing may depend on the encoder's buffers.
    std::vector<Blob> copies;
    for (const auto& f : frames) copies.push_back(Blob::copy_of(f.data, f.size));
    Message back = decode(copies);
    CHECK(type_of(back) == type_of(m));
    CHECK(test::message_diff(m, back) == "");
  }
  CHECK(types.size() == std::variant_size_v<Message>);  // every type of the message table
}

TEST_CASE("frame layout: tag, msgpack map header with t and v, raw tensor frames", "[unit][proto]") {
  auto frames = encode(sample<ExpertForward>());
  REQUIRE(frames.size() == 4);
  CHECK(frames[0].to_string() == "PCMOE/1");
  auto oh = msgpack::unpack(reinterpret_cast<const char*>(frames[1].data), frames[1].size);
  REQUIRE(oh.get().type == msgpack::type::MAP);
  auto hdr = oh.get().as<std::map<std::string, msgpack::object>>();
  CHECK(hdr.at("t").as<unsigned>() == 30);
  CHECK(hdr.at("v").as<unsigned>() == kProtocolMinor);
  CHECK(hdr.at("ids").as<std::vector<msgpack::object>>()[0].as<unsigned>() ==
        static_cast<unsigned>(DType::i32));
  CHECK(hdr.at("rows").as<std::vector<msgpack::object>>()[1].as<std::vector<int64_t>>() ==
        std::vector<int64_t>{3, 4});
  CHECK(frames[2].size == 12);  // ids: 3 x int32
  CHECK(frames[3].size == 24);  // rows: 3 x 4 x bf16
  CHECK(describe(sample<ExpertForward>()) ==
        "expert_forward rid=77 req=\"alice\" step=1505 layer=3 mode=1 ids=int32[3] rows=bf16[3,4]");
}

TEST_CASE("decoded tensors share the received frames (no copy)", "[unit][proto]") {
  auto frames = encode(sample<ExpertForward>());
  auto m = std::get<ExpertForward>(decode(frames));
  CHECK(m.rows.data.data == frames[3].data);
  CHECK(m.expert_ids.data.data == frames[2].data);
}

TEST_CASE("encode refuses a tensor whose bytes do not match its shape", "[unit][proto]") {
  ExpertForwardReply r = sample<ExpertForwardReply>();
  r.outputs.shape = {5, 4};
  CHECK_THROWS_AS(encode(r), pcmoe::Error);
}

TEST_CASE("higher minor versions and unknown keys are accepted", "[unit][proto]") {
  auto frames = encode(sample<StepEnd>());
  frames = with_field(frames, "v", [](Packer& pk) { pk.pack(7); });
  frames = with_field(frames, "zz_future", [](Packer& pk) {
    pk.pack_map(1);
    pk.pack("nested");
    pk.pack_array(2);
    pk.pack(1.5);
    pk.pack_nil();
  });
  auto m = decode(frames);
  CHECK(test::message_diff(m, sample<StepEnd>()) == "");
}

TEST_CASE("a DecodeError carries type and request id and maps to an error reply", "[unit][proto]") {
  ExpertBackward b = sample<ExpertBackward>();
  b.grad_outputs = make_f32({1, 2}, {1.0f, NAN});
  try {
    decode(encode(b));
    FAIL("accepted NaN");
  } catch (const DecodeError& e) {
    CHECK(e.code == ErrorCode::non_finite);
    CHECK(e.type == MsgType::expert_backward);
    CHECK(e.request_id == 77);
    ErrorMsg m = to_error_msg(e);
    CHECK(m.code == static_cast<uint16_t>(ErrorCode::non_finite));
    CHECK(m.in_reply_to == static_cast<uint16_t>(MsgType::expert_backward));
    CHECK(m.request_id == 77);
    CHECK_THAT(m.reason, Catch::Contains("gout"));
    CHECK_THAT(std::string(e.what()), Catch::StartsWith("non_finite: "));
  }
  // Before the type is known, nothing is claimed.
  try {
    decode({Blob::from_string("PCMOE/9"), Blob::from_string("")});
  } catch (const DecodeError& e) {
    CHECK(e.type == MsgType{0});
    CHECK(e.request_id == 0);
  }
}

TEST_CASE("names of types and error codes", "[unit][proto]") {
  CHECK(msg_type_name(MsgType::expert_backward_reply) == "expert_backward_reply");
  CHECK(msg_type_name(MsgType{200}) == "unknown");
  CHECK(error_code_name(ErrorCode::unknown_request) == "unknown_request");
  CHECK(error_code_name(ErrorCode{999}) == "unknown");
  CHECK(type_of(Message{StepAbortAck{}}) == MsgType::step_abort_ack);
}
