// Byte-level tokenizer (see tokenizer.h).
#include "data/tokenizer.h"

#include "common/error.h"

namespace pcmoe::data {

std::vector<int32_t> ByteTokenizer::encode(std::string_view text) const {
  std::vector<int32_t> ids(text.size());
  for (size_t i = 0; i < text.size(); ++i) ids[i] = static_cast<unsigned char>(text[i]);
  return ids;
}

std::string ByteTokenizer::decode(const int32_t* ids, size_t n) const {
  std::string out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    int32_t id = ids[i];
    PCMOE_CHECK_T(DataError, id >= 0 && id < kVocab,
                  "token id {} at position {} is outside the byte vocabulary [0, {})", id, i, kVocab);
    if (id < 256) out.push_back(static_cast<char>(static_cast<unsigned char>(id)));
  }
  return out;
}

ByteTokenizer make_tokenizer(const std::string& name) {
  if (name == "byte") return ByteTokenizer{};
  throw ConfigError("unknown tokenizer '" + name + "' (known: byte)");
}

}  // namespace pcmoe::data
