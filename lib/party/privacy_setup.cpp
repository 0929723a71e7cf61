// A party's privacy set-up at start (see privacy_setup.h).
#include "party/privacy_setup.h"

#include <algorithm>
#include <cmath>

#include "common/dp_accountant.h"
#include "common/fs.h"
#include "common/log.h"
#include "data/loader.h"

namespace pcmoe::party {

Captures open_captures(const PartyConfig& cfg) {
  Captures c;
  if (cfg.audit.capture == "off") return c;
  const std::string dir =
      cfg.audit.capture_dir.empty() ? fs::join(cfg.run.out_dir, "audit") : cfg.audit.capture_dir;
  const uint64_t max_bytes = static_cast<uint64_t>(cfg.audit.capture_max_mb) << 20;
  auto open = [&](const char* name, const char* what) {
    auto w = std::make_shared<CaptureWriter>(fs::join(dir, name), max_bytes);
    PCMOE_WARN("audit.capture_on")
        .kv("path", w->path())
        .kv("what", what)
        .kv("every", cfg.audit.capture_every)
        .kv("max_mb", cfg.audit.capture_max_mb)
        .kv("message",
            "PRIVACY AUDIT CAPTURE IS ON: this party records federation traffic to disk; audits only");
    return w;
  };
  if (cfg.audit.received())
    c.received = open("received.cap", "as a host: every train request's rows, expert ids, request id, step");
  if (cfg.audit.sent())
    c.sent = open("sent.cap", "as a requester: the token id behind each row sent (kept here, never sent)");
  return c;
}

void log_row_mechanism(const PartyConfig& cfg) {
  const PrivacyConfig& p = cfg.privacy;
  if (p.row_noise_std <= 0) return;
  if (p.row_clip <= 0) {
    PCMOE_WARN("privacy.row_noise_unbounded")
        .kv("row_noise_std", p.row_noise_std)
        .kv("message",
            "noise relative to each row's RMS has no (epsilon, delta): set privacy.row_clip for one");
    return;
  }
  const int remote_layers =
      static_cast<int>(cfg.model.moe_layer_indices().size() - local_only_layer_indices(cfg).size());
  // Passes over the training data if this party trained every global step (an upper bound).
  const data::CorpusStats cs = data::scan_corpus(cfg.data);
  const double share = cs.documents > 0 ? static_cast<double>(cs.train_documents) / cs.documents : 1.0;
  const double train_tokens = std::max(1.0, share * static_cast<double>(cs.bytes + 2 * cs.documents));
  const double passes = std::ceil(static_cast<double>(cfg.train.steps) * cfg.train.batch_size *
                                  cfg.model.seq_len / train_tokens);
  const dp::RowBound b = dp::row_bound(p.row_noise_std, p.dp_delta, remote_layers, cfg.model.top_k, passes);
  PCMOE_INFO("privacy.row_mechanism")
      .kv("row_clip", p.row_clip)
      .kv("row_noise_std", p.row_noise_std)
      .kv("noise_multiplier", b.noise_multiplier)
      .kv("delta", b.delta)
      .kv("eps_per_release", b.eps_per_release)
      .kv("releases_per_pass", b.releases_per_pass)
      .kv("eps_per_pass", b.eps_per_pass)
      .kv("passes_max", b.passes)
      .kv("eps_run_max", b.eps_run)
      .kv("covers",
          "the rows sent (hidden states); not expert ids, backward gradients or cross-position influence");
}

}  // namespace pcmoe::party
