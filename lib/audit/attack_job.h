// Owns pcmoe-attack's job: a curious host's attacks on the rows it received in a federation, per
// victim -> host pair and MoE layer (README "Privacy"). The attacker holds its own exported model,
// its own data and its capture; the victims' truth captures only score the attacks; a victim's
// exported model, when given, gives the white-box upper bound (a classifier trained with the
// victim's backbone), for scale. Attacks, each ranking five tokens per row:
//   freq       the oracle row-independent guess: the five most frequent true tokens of these rows
//              (the baseline: an attack at it learned nothing from the rows)
//   freq_own   the attacker's own five most frequent tokens
//   expert     routing trace: the row's expert id -> the tokens the attacker's routers send there
//   nearest    the tokens whose embedding (the attacker's) is nearest to the row (no training)
//   surrogate  an MLP row -> token trained on the attacker's own backbone and data
//   whitebox   the same trained with the victim's backbone on the attacker's data (needs its model)
#pragma once

#include <map>
#include <string>
#include <vector>

#include "audit/attacks.h"
#include "common/json.h"
#include "common/party_config.h"

namespace pcmoe::audit {

struct AttackOptions {
  PartyConfig attacker;                              // its preset and its own data
  std::string attacker_model;                        // its exported model (backbone + every expert)
  std::string capture;                               // its audit capture (received.cap)
  std::map<std::string, std::string> truth;          // victim id -> the victim's sent.cap
  std::map<std::string, std::string> victim_models;  // victim id -> its exported model (white box)
  int batches = 48;                                  // the attacker's own batches to train on
  int64_t max_rows = 8000;                           // victim rows per layer scored (the latest)
  double assume_clip = 0;                            // the victims' privacy.row_clip, applied to the
  double assume_noise = 0;                           // attacker's training rows with their row_noise_std
  ClassifierOptions classifier;
};

struct PairResult {
  std::string victim, host;
  int layer = 0;
  int64_t rows = 0;
  std::vector<std::pair<std::string, Score>> attacks;  // in the order of the header comment
};

struct AttackReport {
  std::vector<PairResult> pairs;
  std::map<std::string, int64_t> unmatched;    // received requests with no truth record, per victim
  std::map<int, double> surrogate_train_top1;  // per layer: the classifier on its own rows
};

// Runs every attack. Throws ConfigError / DataError naming the file or option.
AttackReport run_attacks(const AttackOptions& options);

// Two tables (top-1, then top-5 accuracy in %), at most 80 columns wide.
std::string format_report(const AttackReport& report);
JsonObject report_json(const AttackReport& report, const AttackOptions& options);

}  // namespace pcmoe::audit
