// pcmoe-attack's job (see attack_job.h).
#include "audit/attack_job.h"

#include <fmt/format.h>

#include "audit/captured.h"
#include "audit/model_rows.h"
#include "common/error.h"
#include "common/log.h"
#include "model/compat.h"
#include "model/privacy.h"

namespace pcmoe::audit {

namespace {

// The attacker's training rows as the victims' defence would have sent them (Kerckhoffs: the
// defence's parameters are known, its randomness is not).
torch::Tensor as_defended(const torch::Tensor& rows, const AttackOptions& o, at::Generator& gen) {
  return model::add_row_noise(model::clip_rows(rows, o.assume_clip), o.assume_clip, o.assume_noise, gen);
}

}  // namespace

AttackReport run_attacks(const AttackOptions& o) {
  AttackReport report;
  const Captured cap = load_captured(o.capture, o.truth, o.max_rows);
  report.unmatched = cap.unmatched;
  if (cap.by_victim_layer.empty()) {
    throw DataError(
        fmt::format("{}: no request of any victim given with --truth was found in it (captured by "
                    "party '{}')",
                    o.capture, cap.host));
  }
  // The models run on the attacker's run.device; the rows they give and the classifiers stay on the CPU.
  const torch::Device device = model::parse_device(o.attacker.run.device);
  const auto& m = o.attacker.model;
  PCMOE_INFO("attack.own_rows").kv("model", o.attacker_model).kv("batches", o.batches);
  const ModelRows own =
      collect_rows(m, o.attacker.train, o.attacker_model, o.attacker.data, o.batches, device);
  std::map<std::string, ModelRows> victim_rows;
  for (const auto& [victim, path] : o.victim_models) {
    PCMOE_INFO("attack.victim_rows").kv("victim", victim).kv("model", path);
    victim_rows.emplace(victim, collect_rows(m, o.attacker.train, path, o.attacker.data, o.batches, device));
  }
  at::Generator gen = model::make_cpu_generator(o.classifier.seed);
  std::map<int, RowClassifier> surrogate;
  for (const auto& [key, v] : cap.by_victim_layer) {
    const auto& [victim, layer] = key;
    auto own_layer = own.layers.find(layer);
    if (own_layer == own.layers.end())
      throw DataError(
          fmt::format("layer {} of the capture is not a MoE layer of the attacker's model", layer));
    const LayerRows& lr = own_layer->second;
    if (!surrogate.count(layer)) {
      RowClassifier c(o.classifier);
      c.fit(as_defended(lr.rows, o, gen), lr.tokens, m.vocab_size);
      report.surrogate_train_top1[layer] = c.train_accuracy();
      surrogate.emplace(layer, std::move(c));
    }
    PairResult p;
    p.victim = victim;
    p.host = cap.host;
    p.layer = layer;
    p.rows = v.rows.size(0);
    const int64_t n = p.rows;
    auto true_counts = torch::bincount(v.tokens, {}, m.vocab_size).to(torch::kFloat64);
    p.attacks.push_back({"freq", score(rank_fixed(true_counts, n), v.tokens)});
    p.attacks.push_back({"freq_own", score(rank_fixed(own.unigram, n), v.tokens)});
    p.attacks.push_back(
        {"expert", score(rank_by_expert(lr.expert_token, own.unigram, v.expert_ids), v.tokens)});
    p.attacks.push_back({"nearest", score(rank_by_embedding(own.embeddings, v.rows), v.tokens)});
    p.attacks.push_back({"surrogate", score(surrogate.at(layer).rank(v.rows), v.tokens)});
    auto vr = victim_rows.find(victim);
    if (vr != victim_rows.end() && vr->second.layers.count(layer)) {
      RowClassifier wb(o.classifier);
      const LayerRows& vl = vr->second.layers.at(layer);
      wb.fit(as_defended(vl.rows, o, gen), vl.tokens, m.vocab_size);
      p.attacks.push_back({"whitebox", score(wb.rank(v.rows), v.tokens)});
    }
    PCMOE_INFO("attack.pair").kv("victim", victim).kv("host", cap.host).kv("layer", layer).kv("rows", n);
    report.pairs.push_back(std::move(p));
  }
  return report;
}

std::string format_report(const AttackReport& r) {
  static const char* kNames[] = {"freq", "freq_own", "expert", "nearest", "surrogate", "whitebox"};
  std::string out;
  for (int which = 0; which < 2; ++which) {
    out += fmt::format("{} token accuracy, % of the rows a host received (freq: the baseline)\n",
                       which == 0 ? "top-1" : "top-5");
    out += fmt::format("{:<10} {:>5} {:>6}", "pair", "layer", "rows");
    for (const char* n : kNames) out += fmt::format(" {:>9}", n);
    out += "\n";
    for (const auto& p : r.pairs) {
      out += fmt::format("{:<10} {:>5} {:>6}", p.victim + "->" + p.host, p.layer, p.rows);
      for (const char* n : kNames) {
        std::string cell = "-";
        for (const auto& [name, s] : p.attacks) {
          if (name == n) cell = fmt::format("{:.1f}", 100.0 * (which == 0 ? s.top1 : s.top5));
        }
        out += fmt::format(" {:>9}", cell);
      }
      out += "\n";
    }
    out += "\n";
  }
  return out;
}

JsonObject report_json(const AttackReport& r, const AttackOptions& o) {
  std::vector<JsonObject> pairs;
  for (const auto& p : r.pairs) {
    JsonObject attacks;
    for (const auto& [name, s] : p.attacks)
      attacks.add(name, JsonObject().add("top1", s.top1).add("top5", s.top5));
    pairs.push_back(JsonObject()
                        .add("victim", p.victim)
                        .add("host", p.host)
                        .add("layer", static_cast<int64_t>(p.layer))
                        .add("rows", p.rows)
                        .add("attacks", attacks));
  }
  JsonObject unmatched, train;
  for (const auto& [v, n] : r.unmatched) unmatched.add(v, n);
  for (const auto& [l, a] : r.surrogate_train_top1) train.add(std::to_string(l), a);
  JsonObject settings;
  settings.add("attacker", o.attacker.party.id)
      .add("attacker_model", o.attacker_model)
      .add("capture", o.capture);
  settings.add("batches", static_cast<int64_t>(o.batches)).add("max_rows", o.max_rows);
  settings.add("assume_clip", o.assume_clip).add("assume_noise", o.assume_noise);
  return JsonObject()
      .add("settings", settings)
      .add("pairs", pairs)
      .add("unmatched_requests", unmatched)
      .add("surrogate_train_top1", train);
}

}  // namespace pcmoe::audit
