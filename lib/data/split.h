// Owns the train/held-out split: a document goes to one side by a salted hash of its content, so
// the same text always lands on the same side, whatever the file order, file name or epoch, and
// duplicated text never straddles the split.
#pragma once

#include <cstdint>
#include <string_view>

#include "common/data_config.h"

namespace pcmoe::data {

enum class Split { train, heldout };

// FNV-1a-64 over the salt's bytes followed by the document's bytes (lib/common/hash.h).
uint64_t split_hash(std::string_view doc, std::string_view salt);
// split_hash(doc, config.split_salt) % 1000 < config.heldout_permille.
bool is_heldout(std::string_view doc, const DataConfig& config);

// The same decision with the salt hashed once; for the packing hot path.
class Splitter {
 public:
  explicit Splitter(const DataConfig& config);
  bool heldout(std::string_view doc) const;
  Split side(std::string_view doc) const { return heldout(doc) ? Split::heldout : Split::train; }

 private:
  uint64_t salt_hash_;
  int heldout_permille_;
};

}  // namespace pcmoe::data
