// Owns the configuration of a participant's private training data (the `data:` block): sources,
// the held-out split, shuffling. Loaded by lib/data; no libtorch here.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/config_schema.h"

namespace pcmoe {

struct DataSource {
  std::string path;                  // a file or a directory
  std::string format = "auto";       // auto | text | fortune | lines
  std::vector<std::string> include;  // file-name globs to take (empty: every file)
  std::vector<std::string> exclude;  // file-name globs to skip
  bool recursive = true;             // descend into sub-directories
};

struct DataConfig {
  std::vector<DataSource> sources;
  int heldout_permille = 50;  // documents whose hash falls below this (per mille) are held out
  std::string split_salt = "pcmoe-split-v1";
  int shuffle_buffer = 512;  // sequences kept for shuffling
  uint64_t seed = 1;         // order of files and sequences
};

config::Schema<DataSource> data_source_schema();
config::Schema<DataConfig> data_schema();
// Checks that sources exist and are readable; throws ConfigError naming file, key and path.
void validate(const DataConfig& d, const config::Origins& origins, const std::string& prefix = "data");

}  // namespace pcmoe
