// Owns a party's privacy set-up at start (README "Privacy"; its initial backbone is
// model::initial_backbone): the audit capture files (audit.capture, loud in the logs), and the
// accounting of its row mechanism (privacy.row_clip + row_noise_std), logged once.
#pragma once

#include <cstdint>
#include <memory>

#include "common/capture_file.h"
#include "common/party_config.h"

namespace pcmoe::party {

struct Captures {
  std::shared_ptr<CaptureWriter> received;  // as a host
  std::shared_ptr<CaptureWriter> sent;      // as a requester (token ids)
};
// The capture files audit.capture asks for (none when off), each announced with a warning
// (audit.capture_on). Throws Error if a file cannot be created.
Captures open_captures(const PartyConfig& cfg);

// Logs privacy.row_mechanism (clip, sigma, epsilon per release, per pass and for the run at
// most) when row_clip and row_noise_std are set, or privacy.row_noise_unbounded when only the
// noise is (no formal guarantee). Reads the corpus once to count the passes.
void log_row_mechanism(const PartyConfig& cfg);

}  // namespace pcmoe::party
