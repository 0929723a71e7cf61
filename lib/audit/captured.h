// Owns what a host captured (audit.capture received) joined with its victims' ground truth
// (audit.capture sent): per victim and MoE layer, the rows the host received, their expert ids and
// the token behind each row. The truth is for scoring only: no attack reads it.
#pragma once

#include <torch/torch.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace pcmoe::audit {

struct VictimRows {
  torch::Tensor rows;        // [n, d] f32, as the host received them
  torch::Tensor expert_ids;  // [n] int64
  torch::Tensor tokens;      // [n] int64, from the victim's own record
};

struct Captured {
  std::string host;                                                   // the capturing host's party id
  int64_t host_index = -1;                                            // and index
  std::map<std::pair<std::string, int>, VictimRows> by_victim_layer;  // (victim id, layer)
  std::map<std::string, int64_t> unmatched;  // victim -> received requests without a truth record
};

// Reads the host's received capture and each victim's sent capture (victim id -> file), keeping
// at most `max_rows` rows per (victim, layer): those of the latest steps, nearest to the models
// the attacks use (the parties' models at the end of the run). Victims without a truth file are
// skipped. Throws DataError naming a file whose records disagree (a truth record
// of another length, a file of the wrong side).
Captured load_captured(const std::string& received_file,
                       const std::map<std::string, std::string>& truth_files, int64_t max_rows);

}  // namespace pcmoe::audit
