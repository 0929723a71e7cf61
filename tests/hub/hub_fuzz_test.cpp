// Fuzzing a live hub's socket: 100,000 random and mutated frame sets (valid encodings of every
// message type with bit flips, interesting bytes, truncation, dropped / duplicated / swapped
// frames, a wrong protocol tag, random frames) from one persistent DEALER to a HubServer running
// in-process. The hub must answer what it can, never crash, and afterwards still serve a correct
// status and register a party. Deterministic (pcmoe::Rng).
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdio>
#include <map>

#include "common/hash.h"
#include "hub_test_util.h"
#include "net/rpc.h"
#include "proto/codec.h"
#include "proto/proto_test_util.h"
#include "test_util.h"

using namespace pcmoe;
using Frames = std::vector<proto::Blob>;

namespace {

void mutate_bytes(Rng& rng, Frames& f, size_t idx) {
  if (idx >= f.size()) return;
  std::string s = f[idx].to_string();
  if (s.empty()) return;
  static const uint8_t kInteresting[] = {0x00, 0x7f, 0x80, 0xc0, 0xc1, 0xc3, 0xca, 0xcb, 0xcf,
                                         0xd3, 0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0xe0, 0xff};
  switch (rng.below(4)) {
    case 0:
      for (uint64_t n = 1 + rng.below(8); n > 0; --n)
        s[rng.below(s.size())] ^= static_cast<char>(1 << rng.below(8));
      break;
    case 1:
      s[rng.below(s.size())] = static_cast<char>(kInteresting[rng.below(sizeof(kInteresting))]);
      break;
    case 2: {  // a huge declared length
      size_t at = rng.below(s.size());
      std::string huge = {static_cast<char>(0xdb + rng.below(5)), '\x7f', '\xff', '\xff', '\xff'};
      s.replace(at, std::min(huge.size(), s.size() - at), huge);
      break;
    }
    default:
      s.resize(rng.below(s.size()));
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

Frames random_frames(Rng& rng) {
  Frames f;
  for (uint64_t n = 1 + rng.below(5); n > 0; --n) {
    std::string s(rng.below(48), '\0');
    for (auto& c : s) c = static_cast<char>(rng.next());
    f.push_back(proto::Blob::from_string(std::move(s)));
  }
  if (rng.below(2)) f[0] = proto::Blob::from_string(proto::protocol_tag());
  return f;
}

// A legitimate operator stop would end the run: not what this test is about.
bool is_stop(const Frames& f) {
  try {
    auto m = proto::decode(f);
    auto* c = std::get_if<proto::Control>(&m);
    return c != nullptr && c->action == "stop";
  } catch (const proto::DecodeError&) {
    return false;
  }
}

}  // namespace

TEST_CASE("the hub survives 100,000 fuzzed messages on its socket", "[fuzz][hub]") {
  test::TempDir dir;
  HubConfig cfg = test::small_hub_config({"a", "b"}, dir.path());
  cfg.train.steps = 100;
  test::RunningHub hub(cfg);

  std::vector<Frames> seeds;
  for (const auto& m : test::golden_messages()) seeds.push_back(proto::encode(m));
  // Hub-specific valid messages, so mutations also reach registered-party paths.
  seeds.push_back(proto::encode(test::hello_for(cfg, "a")));
  seeds.push_back(proto::encode(test::report_for(cfg, 1, 0)));
  seeds.push_back(proto::encode(test::snapshot_for(cfg, 0, 1, 0)));
  seeds.push_back(proto::encode(proto::Control{"snapshot"}));

  net::ClientOptions o;
  o.endpoint = hub.endpoint();
  net::Client fuzzer(hub.ctx(), o);
  constexpr uint64_t kIterations = 100000;
  Rng rng(0xf022'4b0b);
  uint64_t sent = 0, replies = 0;
  std::map<std::string, uint64_t> answers;
  auto drain = [&](int timeout_ms) {
    while (auto in = fuzzer.recv(timeout_ms)) {
      ++replies;
      try {
        auto m = proto::decode(in->frames);
        auto* e = std::get_if<proto::ErrorMsg>(&m);
        ++answers[e ? std::string(proto::error_code_name(static_cast<proto::ErrorCode>(e->code)))
                    : std::string(proto::msg_type_name(proto::type_of(m)))];
      } catch (const proto::DecodeError& e) {
        FAIL("the hub sent something that does not decode: " << e.what());
      }
      timeout_ms = 0;
    }
  };
  auto start = std::chrono::steady_clock::now();
  while (sent < kIterations) {
    Frames f;
    if (rng.below(10) == 0) {
      f = random_frames(rng);
    } else {
      f = seeds[rng.below(seeds.size())];
      for (uint64_t n = rng.below(4); n > 0; --n) {
        switch (rng.below(3)) {
          case 0:
            mutate_bytes(rng, f, 1);
            break;
          case 1:
            if (f.size() > 2) mutate_bytes(rng, f, 2 + rng.below(f.size() - 2));
            break;
          default:
            mutate_frames(rng, f);
        }
      }
    }
    if (f.empty() || is_stop(f)) continue;
    REQUIRE(fuzzer.send(f, test::kWaitMs));
    ++sent;
    if (sent % 256 == 0) drain(0);
  }
  drain(200);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::string summary;
  for (const auto& [k, n] : answers) summary += fmt::format(" {}={}", k, n);
  std::printf("hub fuzz: %llu frame sets in %.2f s, %llu replies:%s\n", static_cast<unsigned long long>(sent),
              secs, static_cast<unsigned long long>(replies), summary.c_str());
  CHECK(sent == kIterations);
  CHECK(replies > sent / 2);  // most get an answer (replies to a full queue may be dropped)
  CHECK(answers.size() >= 8);

  // Still correct afterwards: the status, and a real registration.
  proto::Status s = hub.status();
  CHECK(s.run_id == "run-test");
  CHECK(s.total_steps == 100);
  CHECK(s.parties.size() == 2);
  CHECK((s.state == "waiting" || s.state == "paused"));
  test::FakeParty b(hub.ctx(), hub.endpoint(), cfg, "b");
  auto w = b.join();
  REQUIRE(w);
  CHECK(w->party_index == 1);
  CHECK(hub.status().parties[1].alive);
}
