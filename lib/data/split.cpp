// Document-level train/held-out split (see split.h).
#include "data/split.h"

#include "common/hash.h"

namespace pcmoe::data {

uint64_t split_hash(std::string_view doc, std::string_view salt) { return fnv1a64(doc, fnv1a64(salt)); }

bool is_heldout(std::string_view doc, const DataConfig& config) { return Splitter(config).heldout(doc); }

Splitter::Splitter(const DataConfig& config)
    : salt_hash_(fnv1a64(config.split_salt)), heldout_permille_(config.heldout_permille) {}

bool Splitter::heldout(std::string_view doc) const {
  uint64_t h = fnv1a64(doc, salt_hash_);
  return static_cast<int>(h % 1000) < heldout_permille_;
}

}  // namespace pcmoe::data
