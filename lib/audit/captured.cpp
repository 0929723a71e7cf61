// A host's capture joined with its victims' truth (see captured.h).
#include "audit/captured.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

#include "common/capture_file.h"
#include "common/error.h"
#include "model/tensor_io.h"

namespace pcmoe::audit {

namespace {

// A record's tensor `name` of `dtype` (its size was checked when the file was read), on the CPU.
torch::Tensor need(const CaptureRecord& r, const char* name, DType dtype, const std::string& what) {
  const RawTensor* t = r.find(name);
  if (t == nullptr || t->dtype != dtype)
    throw DataError(fmt::format("{}: no {} tensor '{}'", what, dtype_name(dtype), name));
  return model::from_raw(*t);
}

}  // namespace

Captured load_captured(const std::string& received_file,
                       const std::map<std::string, std::string>& truth_files, int64_t max_rows) {
  Captured out;
  const auto received = read_capture(received_file);
  // Each victim's sent requests to this host, by request id.
  std::map<std::string, std::map<uint64_t, CaptureRecord>> truth;
  for (const auto& [victim, path] : truth_files) {
    for (auto& r : read_capture(path)) {
      if (r.side != "sent")
        throw DataError(fmt::format("{}: a '{}' capture, expected sent (the victim's)", path, r.side));
      if (r.self != victim)
        throw DataError(
            fmt::format("{}: written by party '{}', given as the truth of '{}'", path, r.self, victim));
      truth[victim][r.rid] = std::move(r);
    }
  }
  // Latest steps first, so that max_rows keeps the end of the run.
  std::vector<const CaptureRecord*> order;
  for (const auto& r : received) order.push_back(&r);
  std::stable_sort(order.begin(), order.end(),
                   [](const CaptureRecord* x, const CaptureRecord* y) { return x->step > y->step; });
  std::map<std::pair<std::string, int>, std::vector<torch::Tensor>> rows, ids, toks;
  std::map<std::pair<std::string, int>, int64_t> kept;
  for (const CaptureRecord* rp : order) {
    const CaptureRecord& r = *rp;
    const std::string what = fmt::format("{}: request {} of '{}'", received_file, r.rid, r.peer);
    if (r.side != "received")
      throw DataError(fmt::format("{}: a '{}' record, expected received", what, r.side));
    out.host = r.self;
    out.host_index = r.self_index;
    if (!truth_files.count(r.peer)) continue;
    auto t = truth[r.peer].find(r.rid);
    if (t == truth[r.peer].end() || t->second.peer != std::to_string(r.self_index) ||
        t->second.layer != r.layer || t->second.step != r.step) {
      out.unmatched[r.peer]++;
      continue;
    }
    const auto key = std::make_pair(r.peer, static_cast<int>(r.layer));
    if (kept[key] >= max_rows) continue;
    auto x = need(r, "rows", DType::f32, what);
    auto e = need(r, "ids", DType::i32, what).to(torch::kLong);
    auto k = need(t->second, "tokens", DType::i32, what).to(torch::kLong);
    if (x.dim() != 2 || e.dim() != 1 || k.dim() != 1 || e.size(0) != x.size(0) || k.size(0) != x.size(0))
      throw DataError(fmt::format("{}: rows {}, expert ids {}, true tokens {}: shapes that do not agree",
                                  what, fmt::join(x.sizes(), "x"), fmt::join(e.sizes(), "x"),
                                  fmt::join(k.sizes(), "x")));
    rows[key].push_back(x);
    ids[key].push_back(e);
    toks[key].push_back(k);
    kept[key] += x.size(0);
  }
  for (auto& [key, parts] : rows) {
    VictimRows v;
    v.rows = torch::cat(parts, 0);
    v.expert_ids = torch::cat(ids[key], 0);
    v.tokens = torch::cat(toks[key], 0);
    out.by_victim_layer[key] = std::move(v);
  }
  return out;
}

}  // namespace pcmoe::audit
