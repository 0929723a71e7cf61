// Fuzzing of decode(): random frame sets and mutations of valid encodings of every message type
// (bit flips, interesting bytes, huge declared lengths, truncations, frame drops, duplications and
// swaps, header field type swaps, NaN/Inf injection into tensors). Every input must either decode
// to a message that re-encodes and decodes again, or throw DecodeError: nothing else, no crash.
// Deterministic (pcmoe::Rng); run it under the asan preset to catch memory errors.
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>

#include "common/hash.h"
#include "fuzz_util.h"
#include "proto/codec.h"
#include "proto_test_util.h"

using namespace pcmoe;
using namespace pcmoe::proto;

using test::Frames;

TEST_CASE("decode survives random and mutated frame sets", "[fuzz][proto]") {
  std::vector<Message> seeds = test::golden_messages();
  for (const auto& [stem, m] : test::golden_messages_1_1()) seeds.push_back(m);  // fp8, timelines
  for (const auto& [stem, m] : test::golden_messages_1_2()) seeds.push_back(m);  // sessions, rounds
  std::vector<Frames> valid;
  for (const auto& m : seeds) valid.push_back(encode(m));
  Limits tight;
  tight.d_model = 4;
  tight.max_rows = 3;
  tight.max_array_len = 8;
  tight.max_string_bytes = 12;
  tight.max_tensors = 4;

  // PCMOE_FUZZ_ITERATIONS overrides the count (e.g. millions for a long run).
  const char* env = std::getenv("PCMOE_FUZZ_ITERATIONS");
  const uint64_t kIterations = env ? std::strtoull(env, nullptr, 10) : 300000;
  Rng rng(0x5eed'f022);
  std::map<std::string, uint64_t> outcomes;
  auto start = std::chrono::steady_clock::now();
  for (uint64_t it = 0; it < kIterations; ++it) {
    Frames f;
    if (rng.below(10) == 0) {
      f = test::random_frames(rng, 0);
    } else {
      f = valid[rng.below(valid.size())];
      if (rng.below(3) == 0) test::swap_field_type(rng, f);
      for (uint64_t n = 1 + rng.below(3); n > 0; --n) {
        switch (rng.below(4)) {
          case 0:
            test::mutate_bytes(rng, f, 1);
            break;
          case 1:
            if (f.size() > 2) test::mutate_bytes(rng, f, 2 + rng.below(f.size() - 2));
            break;
          case 2:
            test::inject_non_finite(rng, f);
            break;
          default:
            test::mutate_frames(rng, f);
        }
      }
    }
    const Limits& limits = rng.below(4) == 0 ? tight : Limits{};
    try {
      Message m = decode(f, limits);
      // Whatever was accepted must be re-encodable and accepted again.
      Message again = decode(encode(m), limits);
      if (test::message_diff(m, again) != "") FAIL("re-decode differs: " << test::message_diff(m, again));
      ++outcomes["accepted"];
    } catch (const DecodeError& e) {
      ++outcomes[std::string(error_code_name(e.code))];
    } catch (const std::exception& e) {
      FAIL("iteration " << it << ": decode threw something other than DecodeError: " << e.what());
    }
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const std::string summary = test::counts_text(outcomes);
  std::printf("fuzz decode: %llu frame sets in %.2f s:%s\n", static_cast<unsigned long long>(kIterations),
              secs, summary.c_str());
  CHECK(outcomes["accepted"] > 0);
  CHECK(outcomes.size() >= 8);  // the mutations reach most rejection paths
}
