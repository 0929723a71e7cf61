// Tests of packing and batch streams: window layout, split disjointness, shuffling, exact resume
// by seek(), the held-out stream and fixed held-out set, and errors for empty corpora.
#include "data/loader.h"

#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <map>
#include <set>

#include "common/error.h"
#include "common/fs.h"
#include "data/split.h"
#include "data_test_util.h"
#include "test_util.h"

using namespace pcmoe;
using data::BatchLoader;
using data::ByteTokenizer;
using data::Split;

namespace {

constexpr int32_t B = ByteTokenizer::kBos;
constexpr int32_t E = ByteTokenizer::kEos;

// A document with a unique marker "<d17>" and a length that varies with i.
std::string make_doc(int i, size_t length = 0) {
  std::string s = "<d" + std::to_string(i) + "> ";
  if (length == 0) length = 20 + static_cast<size_t>(i * 37) % 90;
  const std::string filler = "the quick brown fox jumps over the lazy dog ";
  for (size_t k = 0; s.size() < length; ++k) s.push_back(filler[k % filler.size()]);
  s.resize(length);
  return s;
}

// `n_files` fortune files of `per_file` documents; returns the documents in file order.
std::vector<std::string> write_corpus(const test::TempDir& dir, int n_files, int per_file,
                                      size_t length = 0) {
  std::vector<std::string> docs;
  for (int f = 0; f < n_files; ++f) {
    std::string content;
    for (int k = 0; k < per_file; ++k) {
      docs.push_back(make_doc(f * per_file + k, length));
      content += docs.back() + "\n%\n";
    }
    dir.write("part-" + std::to_string(f), content);
  }
  for (auto& d : docs) d += "\n";  // the document keeps its last newline
  return docs;
}

// Windows of the current epoch of `loader` (batch_size 1), until the epoch changes.
std::vector<std::vector<int32_t>> one_epoch(BatchLoader& loader) {
  std::vector<std::vector<int32_t>> out;
  uint64_t e = loader.epoch();
  while (loader.epoch() == e) out.push_back(loader.next().tokens);
  return out;
}

}  // namespace

TEST_CASE("packing wraps documents in BOS/EOS and cuts windows of seq_len + 1", "[unit][data]") {
  test::TempDir dir;
  dir.write("l", "ab\ncde\nf\n");
  auto c = test::one_source(dir.path(), "lines", 0);
  c.shuffle_buffer = 1;
  {
    BatchLoader loader(c, Split::train, 3, 3);
    auto b = loader.next();
    CHECK(b.batch_size == 3);
    CHECK(b.seq_len == 3);
    CHECK(b.tokens == std::vector<int32_t>{B, 'a', 'b', E, B, 'c', 'd', 'e', E, B, 'f', E});
    CHECK(loader.position() == BatchLoader::Position{1, 0});
    CHECK(loader.next().tokens == b.tokens);  // epoch 1: one file, nothing to reorder
  }
  {
    // 12 tokens make two windows of 5; the last two tokens (f, EOS) are dropped.
    BatchLoader loader(c, Split::train, 2, 4);
    auto b = loader.next();
    CHECK(b.tokens == std::vector<int32_t>{B, 'a', 'b', E, B, 'c', 'd', 'e', E, B});
    CHECK(loader.epoch() == 1);
  }
}

TEST_CASE("an unshuffled train epoch is exactly the train documents, no held-out text", "[unit][data]") {
  test::TempDir dir;
  auto docs = write_corpus(dir, 6, 25);
  auto c = test::one_source(dir.path(), "fortune", 250);
  c.shuffle_buffer = 1;
  std::set<std::string> train, heldout;
  uint64_t train_tokens = 0;
  for (const auto& d : docs) {
    if (data::is_heldout(d, c)) {
      heldout.insert(d);
    } else {
      train.insert(d);
      train_tokens += d.size() + 2;
    }
  }
  REQUIRE(heldout.size() > 10);
  const int seq_len = 63;
  BatchLoader loader(c, Split::train, 1, seq_len);
  auto windows = one_epoch(loader);
  CHECK(windows.size() == train_tokens / (seq_len + 1));
  std::vector<int32_t> stream;
  for (const auto& w : windows) stream.insert(stream.end(), w.begin(), w.end());
  auto seen = test::complete_docs(stream);
  CHECK(seen.size() + 2 >= train.size());  // only the cut-off tail is missing
  std::set<std::string> unique(seen.begin(), seen.end());
  CHECK(unique.size() == seen.size());
  for (const auto& d : seen) CHECK(train.count(d) == 1);
}

TEST_CASE("held-out documents never appear in shuffled train windows", "[unit][data]") {
  test::TempDir dir;
  auto docs = write_corpus(dir, 5, 40);
  auto c = test::one_source(dir.path(), "fortune", 300);
  c.shuffle_buffer = 16;
  std::vector<std::string> heldout_markers, train_markers;
  for (size_t i = 0; i < docs.size(); ++i) {
    std::string marker = "<d" + std::to_string(i) + ">";
    (data::is_heldout(docs[i], c) ? heldout_markers : train_markers).push_back(marker);
  }
  REQUIRE(heldout_markers.size() > 20);
  std::string train_text;
  BatchLoader loader(c, Split::train, 1, 127);
  for (const auto& w : one_epoch(loader)) train_text += test::text_of(w.data(), w.size()) + "|";
  for (const auto& m : heldout_markers) CHECK(train_text.find(m) == std::string::npos);
  size_t found = 0;
  for (const auto& m : train_markers) found += train_text.find(m) != std::string::npos;
  CHECK(found * 10 >= train_markers.size() * 8);  // most train markers are not cut by a window edge
  // And the other way round.
  std::string heldout_text;
  BatchLoader held(c, Split::heldout, 1, 127);
  for (const auto& w : one_epoch(held)) heldout_text += test::text_of(w.data(), w.size()) + "|";
  for (const auto& m : train_markers) CHECK(heldout_text.find(m) == std::string::npos);
}

TEST_CASE("shuffling is deterministic per seed and differs between epochs and seeds", "[unit][data]") {
  test::TempDir dir;
  const int seq_len = 47;
  auto docs = write_corpus(dir, 4, 20, seq_len - 2);  // + "\n" + BOS + EOS: one window per document
  auto c = test::one_source(dir.path(), "fortune", 100);
  c.shuffle_buffer = 8;
  std::vector<std::string> train;
  for (const auto& d : docs) {
    if (!data::is_heldout(d, c)) train.push_back(d);
  }
  std::sort(train.begin(), train.end());
  auto texts = [](const std::vector<std::vector<int32_t>>& windows) {
    std::vector<std::string> out;
    for (const auto& w : windows) {
      CHECK(w.front() == B);
      CHECK(w.back() == E);
      out.push_back(test::text_of(w.data(), w.size()));
    }
    return out;
  };
  BatchLoader a(c, Split::train, 1, seq_len);
  auto e0 = texts(one_epoch(a));
  auto e1 = texts(one_epoch(a));
  auto s0 = e0, s1 = e1;
  std::sort(s0.begin(), s0.end());
  std::sort(s1.begin(), s1.end());
  CHECK(s0 == train);  // every train document exactly once per epoch
  CHECK(s1 == train);
  CHECK(e0 != e1);
  CHECK(e0 != s0);  // not left in sorted order
  // The shuffle buffer reorders windows inside a file too (file order alone keeps a file's
  // documents ascending).
  int inversions = 0;
  std::map<int, int> last_in_file;  // file -> last document id seen
  for (const auto& t : e0) {
    int id = std::stoi(t.substr(2));
    auto it = last_in_file.find(id / 20);
    if (it != last_in_file.end() && it->second > id) ++inversions;
    last_in_file[id / 20] = id;
  }
  CHECK(inversions > 5);
  BatchLoader again(c, Split::train, 1, seq_len);
  CHECK(texts(one_epoch(again)) == e0);
  c.seed = 2;
  BatchLoader other(c, Split::train, 1, seq_len);
  CHECK(texts(one_epoch(other)) != e0);
}

TEST_CASE("seek() resumes exactly, within an epoch and across epoch boundaries", "[unit][data]") {
  test::TempDir dir;
  write_corpus(dir, 3, 20);
  auto c = test::one_source(dir.path(), "fortune", 300);
  c.shuffle_buffer = 8;
  for (Split split : {Split::train, Split::heldout}) {
    const int seq_len = 63;
    // A batch size that does not divide the epoch, so some batch straddles an epoch boundary.
    BatchLoader probe(c, split, 1, seq_len);
    const uint64_t epoch_windows = one_epoch(probe).size();
    int bs = 3;
    while (epoch_windows % static_cast<uint64_t>(bs) == 0) ++bs;
    BatchLoader ref(c, split, bs, seq_len);
    std::vector<BatchLoader::Position> pos;
    std::vector<data::Batch> batches;
    for (int i = 0; i < 60; ++i) {
      pos.push_back(ref.position());
      batches.push_back(ref.next());
    }
    REQUIRE(ref.epoch() >= 2);
    // Some batch straddles an epoch boundary (the epoch size is not a multiple of bs).
    bool straddles = false;
    for (size_t i = 1; i < pos.size(); ++i)
      straddles |= pos[i].epoch != pos[i - 1].epoch && pos[i].sequences != 0;
    CAPTURE(split == Split::train, pos.back().epoch, pos.back().sequences);
    CHECK(straddles);
    BatchLoader resumed(c, split, bs, seq_len);
    for (size_t k : {size_t{0}, size_t{1}, size_t{7}, size_t{19}, size_t{33}, size_t{50}, size_t{3}}) {
      CAPTURE(split == Split::train, k, pos[k].epoch, pos[k].sequences);
      resumed.seek(pos[k]);
      CHECK(resumed.position() == pos[k]);
      for (size_t i = k; i < std::min(k + 10, batches.size()); ++i) {
        REQUIRE(resumed.next().tokens == batches[i].tokens);
        if (i + 1 < pos.size()) CHECK(resumed.position() == pos[i + 1]);
      }
    }
  }
}

TEST_CASE("seek() past the end of an epoch is a data error; its end is the next epoch's start",
          "[unit][data]") {
  test::TempDir dir;
  write_corpus(dir, 2, 10);
  auto c = test::one_source(dir.path(), "fortune", 0);
  BatchLoader loader(c, Split::train, 1, 15);
  uint64_t n = one_epoch(loader).size();
  REQUIRE(loader.position() == BatchLoader::Position{1, 0});
  auto after = loader.next().tokens;
  BatchLoader other(c, Split::train, 1, 15);
  other.seek({0, n});
  CHECK(other.position() == BatchLoader::Position{1, 0});
  CHECK(other.next().tokens == after);
  CHECK_THROWS_WITH(other.seek({3, n + 1}),
                    Catch::Contains("cannot resume at epoch 3") && Catch::Contains(dir.path()));
}

TEST_CASE("the held-out stream keeps file order and cycles", "[unit][data]") {
  test::TempDir dir;
  write_corpus(dir, 3, 10);
  auto c = test::one_source(dir.path(), "fortune", 400);
  BatchLoader held(c, Split::heldout, 1, 15);
  auto first = one_epoch(held);
  REQUIRE(first.size() >= 3);
  CHECK(held.epoch() == 1);
  CHECK(one_epoch(held) == first);
  CHECK(held.buffer_windows() == 1);
  // Same as the fixed evaluation set.
  auto fixed = data::heldout_batches(c, static_cast<int>(first.size()), 1, 15);
  REQUIRE(fixed.size() == first.size());
  for (size_t i = 0; i < fixed.size(); ++i) CHECK(fixed[i].tokens == first[i]);
}

TEST_CASE("heldout_batches: a fixed prefix, fewer batches for a small set, one short batch if tiny",
          "[unit][data]") {
  test::TempDir dir;
  write_corpus(dir, 3, 20);
  auto c = test::one_source(dir.path(), "fortune", 500);
  BatchLoader held(c, Split::heldout, 2, 15);
  auto fixed = data::heldout_batches(c, 3, 2, 15);
  REQUIRE(fixed.size() == 3);
  for (const auto& b : fixed) {
    CHECK(b.batch_size == 2);
    CHECK(b.seq_len == 15);
    CHECK(b.tokens == held.next().tokens);
  }
  CHECK(data::heldout_batches(c, 3, 2, 15)[2].tokens == fixed[2].tokens);
  const size_t m = one_epoch(*std::make_unique<BatchLoader>(c, Split::heldout, 1, 15)).size();
  REQUIRE(m > 4);
  CHECK(data::heldout_batches(c, 1000, 2, 15).size() == m / 2);
  auto tiny = data::heldout_batches(c, 5, static_cast<int>(m) + 3, 15);
  REQUIRE(tiny.size() == 1);
  CHECK(tiny[0].batch_size == static_cast<int>(m));
  CHECK(tiny[0].tokens.size() == m * 16);
  c.heldout_permille = 0;
  CHECK_THROWS_WITH(data::heldout_batches(c, 1, 1, 15),
                    Catch::Contains("held-out split has no full sequence") && Catch::Contains(dir.path()));
  CHECK_THROWS_AS(data::heldout_batches(c, 0, 1, 15), ConfigError);
}

TEST_CASE("empty corpora and empty splits are data errors naming the sources", "[unit][data]") {
  test::TempDir dir;
  auto c = test::one_source(dir.path(), "auto", 0);
  CHECK_THROWS_WITH(BatchLoader(c, Split::train, 1, 8),
                    Catch::Contains(dir.path()) && Catch::Contains("no matching"));
  dir.write("blank", "\n\n  \n");
  CHECK_THROWS_WITH(
      BatchLoader(c, Split::train, 1, 8),
      Catch::Contains("'" + dir.path() + "'") && Catch::Contains("train split has no full sequence"));
  dir.write("short", "tiny");  // 6 tokens < one window of 9
  CHECK_THROWS_AS(BatchLoader(c, Split::train, 1, 8), DataError);
  CHECK_NOTHROW(BatchLoader(c, Split::train, 1, 4));
  // A corpus that is entirely held out has no train data.
  test::TempDir held;
  auto hc = test::one_source(held.path(), "lines", 500);
  std::string content;
  for (int i = 0, n = 0; n < 30; ++i) {
    std::string d = "candidate document " + std::to_string(i);
    if (data::is_heldout(d, hc)) content += d + "\n", ++n;
  }
  held.write("all-held-out", content);
  CHECK_THROWS_WITH(
      BatchLoader(hc, Split::train, 1, 8),
      Catch::Contains("train split has no full sequence") && Catch::Contains("30 documents in the other"));
  CHECK_NOTHROW(BatchLoader(hc, Split::heldout, 1, 8));
  CHECK_THROWS_AS(BatchLoader(hc, Split::heldout, 0, 8), ConfigError);
  CHECK_THROWS_AS(BatchLoader(hc, Split::heldout, 1, 0), ConfigError);
}

TEST_CASE("a file that vanishes during training is a data error naming it", "[unit][data]") {
  test::TempDir dir;
  write_corpus(dir, 2, 10);
  auto c = test::one_source(dir.path(), "fortune", 0);
  BatchLoader loader(c, Split::train, 4, 31);
  std::string victim = dir.path() + "/part-1";
  REQUIRE(::unlink(victim.c_str()) == 0);
  std::string error;
  for (int i = 0; i < 100 && error.empty(); ++i) {
    try {
      loader.next();
    } catch (const DataError& e) {
      error = e.what();
    }
  }
  CHECK_THAT(error, Catch::Contains("'" + victim + "' cannot be opened"));
}

TEST_CASE("scan_corpus counts; gzip and plain copies of a corpus give the same batches", "[unit][data]") {
  test::TempDir plain, packed;
  auto docs = write_corpus(plain, 3, 15);
  for (int f = 0; f < 3; ++f) {
    std::string name = "part-" + std::to_string(f);
    test::write_gz(packed.path() + "/" + name, pcmoe::fs::read_file(plain.path() + "/" + name));
  }
  auto cp = test::one_source(plain.path(), "auto", 200);
  auto cz = test::one_source(packed.path(), "auto", 200);
  auto sp = data::scan_corpus(cp);
  auto sz = data::scan_corpus(cz);
  CHECK(sp.files == 3);
  CHECK(sp.documents == docs.size());
  uint64_t bytes = 0, heldout = 0;
  for (const auto& d : docs) bytes += d.size(), heldout += data::is_heldout(d, cp);
  CHECK(sp.bytes == bytes);
  CHECK(sp.heldout_documents == heldout);
  CHECK(sp.train_documents == docs.size() - heldout);
  CHECK(sz.documents == sp.documents);
  CHECK(sz.bytes == sp.bytes);
  CHECK(sz.heldout_documents == sp.heldout_documents);
  BatchLoader lp(cp, Split::train, 4, 31), lz(cz, Split::train, 4, 31);
  for (int i = 0; i < 10; ++i) CHECK(lp.next().tokens == lz.next().tokens);
}
