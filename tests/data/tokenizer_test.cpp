// Tests of the byte tokenizer: round trips over every byte value, specials, bad ids, the factory.
#include "data/tokenizer.h"

#include <catch2/catch.hpp>

#include "common/error.h"

using namespace pcmoe;
using data::ByteTokenizer;

TEST_CASE("byte tokenizer round-trips every byte value", "[unit][data]") {
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  all += all;  // again, to check position independence
  ByteTokenizer tok;
  auto ids = tok.encode(all);
  REQUIRE(ids.size() == 512);
  for (size_t i = 0; i < ids.size(); ++i) CHECK(ids[i] == static_cast<int32_t>(i % 256));
  CHECK(tok.decode(ids) == all);
  CHECK(tok.encode("").empty());
  CHECK(tok.encode("A\xff")[1] == 255);  // bytes are unsigned, never negative ids
  CHECK(tok.vocab_size() == 259);
  CHECK(ByteTokenizer::kVocab == ByteTokenizer::kPad + 1);
}

TEST_CASE("byte tokenizer decode skips specials and rejects ids outside the vocabulary", "[unit][data]") {
  ByteTokenizer tok;
  std::vector<int32_t> ids = {ByteTokenizer::kBos, 'h', 'i', ByteTokenizer::kEos, ByteTokenizer::kPad, '!'};
  CHECK(tok.decode(ids) == "hi!");
  std::vector<int32_t> bad = {'a', 259};
  CHECK_THROWS_AS(tok.decode(bad), DataError);
  CHECK_THROWS_WITH(tok.decode(bad), Catch::Contains("token id 259 at position 1"));
  std::vector<int32_t> negative = {-1};
  CHECK_THROWS_AS(tok.decode(negative), DataError);
}

TEST_CASE("make_tokenizer knows byte and rejects other names", "[unit][data]") {
  CHECK(data::make_tokenizer("byte").vocab_size() == 259);
  CHECK_THROWS_AS(data::make_tokenizer("bpe"), ConfigError);
  CHECK_THROWS_WITH(data::make_tokenizer("bpe"), Catch::Contains("unknown tokenizer 'bpe'"));
}
