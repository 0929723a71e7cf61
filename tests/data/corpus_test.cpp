// Smoke tests over the real corpora installed by scripts/setup.sh (Debian packages): English
// fortunes, German fortunes, Linux UAPI headers, with the settings recommended in the README.
// Each test passes vacuously if its corpus is absent. The [.perf] test measures streaming speed.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>

#include "common/fs.h"
#include "data/loader.h"
#include "data_test_util.h"

using namespace pcmoe;

namespace {

const char* kFortunes = "/usr/share/games/fortunes";
const char* kFortunesDe = "/usr/share/games/fortunes/de";
const char* kLinuxHeaders = "/usr/include/linux";

DataConfig english_fortunes() {
  DataConfig c = test::one_source(kFortunes, "fortune", 50);
  c.sources[0].exclude = {"*.dat", "*.u8"};
  c.sources[0].recursive = false;  // de/ is the German set
  return c;
}

DataConfig german_fortunes() {
  DataConfig c = test::one_source(kFortunesDe, "fortune", 50);
  c.sources[0].exclude = {"*.dat", "*.u8"};
  return c;
}

DataConfig linux_headers() {
  DataConfig c = test::one_source(kLinuxHeaders, "text", 50);
  c.sources[0].include = {"*.h"};
  return c;
}

std::string describe(const data::CorpusStats& s) {
  char buf[200];
  std::snprintf(buf, sizeof(buf), "%llu files, %llu documents (%llu train, %llu held out), %llu bytes",
                static_cast<unsigned long long>(s.files), static_cast<unsigned long long>(s.documents),
                static_cast<unsigned long long>(s.train_documents),
                static_cast<unsigned long long>(s.heldout_documents),
                static_cast<unsigned long long>(s.bytes));
  return buf;
}

}  // namespace

TEST_CASE("real corpus: English fortunes", "[unit][data]") {
  if (!fs::is_dir(kFortunes)) {
    SUCCEED("no " << kFortunes << " on this machine");
    return;
  }
  auto c = english_fortunes();
  auto files = data::list_files(c);
  CHECK(files.size() >= 30);
  for (const auto& f : files) {
    CHECK(f.path.find("/de/") == std::string::npos);
    CHECK_FALSE(data::glob_match("*.dat", f.path));
  }
  auto s = data::scan_corpus(c);
  INFO("english fortunes: " << describe(s));
  CHECK(s.documents > 3000);
  CHECK(s.train_documents + s.heldout_documents == s.documents);
  double frac = static_cast<double>(s.heldout_documents) / static_cast<double>(s.documents);
  CHECK(frac > 0.035);  // heldout_permille 50, +- ~4 sigma
  CHECK(frac < 0.065);
  // The *.u8 symlinks add nothing when only the binary indexes are excluded.
  c.sources[0].exclude = {"*.dat"};
  auto again = data::scan_corpus(c);
  CHECK(again.files == s.files);
  CHECK(again.bytes == s.bytes);
  // Every file of the set has '%' separator lines, so auto-detection agrees.
  c.sources[0].format = "auto";
  CHECK(data::scan_corpus(c).documents == s.documents);
  // Batches decode to text, mostly printable ASCII.
  data::BatchLoader loader(english_fortunes(), data::Split::train, 8, 256);
  std::string text;
  for (int i = 0; i < 4; ++i) {
    auto b = loader.next();
    text += test::text_of(b.tokens.data(), b.tokens.size());
  }
  size_t printable = 0;
  for (char ch : text) printable += (ch >= 32 && ch < 127) || ch == '\n' || ch == '\t';
  CHECK(printable * 100 >= text.size() * 95);
  CHECK(text.size() > 7000);
}

TEST_CASE("real corpus: German fortunes and Linux headers", "[unit][data]") {
  if (fs::is_dir(kFortunesDe)) {
    auto s = data::scan_corpus(german_fortunes());
    INFO("german fortunes: " << describe(s));
    CHECK(s.documents > 1000);
    CHECK(s.heldout_documents > 0);
  }
  if (fs::is_dir(kLinuxHeaders)) {
    auto s = data::scan_corpus(linux_headers());
    INFO("linux headers: " << describe(s));
    CHECK(s.files > 100);
    CHECK(s.documents >= s.files);  // a header is a document (a few may be cut into pieces)
    data::BatchLoader loader(linux_headers(), data::Split::train, 4, 512);
    CHECK(loader.next().tokens.size() == 4 * 513);
  }
  SUCCEED();
}

TEST_CASE("streaming throughput over the English fortunes", "[.][perf]") {
  if (!fs::is_dir(kFortunes)) return;
  using clock = std::chrono::steady_clock;
  auto c = english_fortunes();
  for (int seq_len : {256, 1024}) {
    data::BatchLoader loader(c, data::Split::train, 16, seq_len);
    loader.next();
    auto t0 = clock::now();
    uint64_t tokens = 0;
    for (uint64_t e = loader.epoch(); loader.epoch() < e + 5;) tokens += loader.next().tokens.size();
    double s = std::chrono::duration<double>(clock::now() - t0).count();
    std::printf("train loader, seq_len %d: %.1f M tokens in %.3f s = %.0f MB/s\n", seq_len, tokens / 1e6, s,
                tokens / s / 1e6);
    CHECK(tokens / s > 50e6);
  }
  auto t0 = clock::now();
  auto st = data::scan_corpus(c);
  std::printf("english fortunes: %s\n", describe(st).c_str());
  double s = std::chrono::duration<double>(clock::now() - t0).count();
  std::printf("scan_corpus: %.2f MB in %.3f s = %.0f MB/s\n", st.bytes / 1e6, s, st.bytes / s / 1e6);
}
