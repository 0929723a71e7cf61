// Owns the byte-level tokenizer: ids 0..255 are the bytes of the text, then three specials
// (BOS, EOS, PAD). Stateless and thread-safe; no libtorch.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace pcmoe::data {

class ByteTokenizer {
 public:
  static constexpr int32_t kBos = 256;
  static constexpr int32_t kEos = 257;
  static constexpr int32_t kPad = 258;
  static constexpr int32_t kVocab = 259;

  // One id per byte (0..255); no specials are added.
  std::vector<int32_t> encode(std::string_view text) const;
  // The bytes of ids 0..255; specials (BOS, EOS, PAD) are skipped. Throws pcmoe::DataError for an id
  // outside [0, kVocab).
  std::string decode(const int32_t* ids, size_t n) const;
  std::string decode(const std::vector<int32_t>& ids) const { return decode(ids.data(), ids.size()); }
  int32_t vocab_size() const { return kVocab; }
};

// The tokenizer named by the model config's `tokenizer` key. Only "byte" exists; anything else
// throws pcmoe::ConfigError naming the value.
ByteTokenizer make_tokenizer(const std::string& name);

}  // namespace pcmoe::data
