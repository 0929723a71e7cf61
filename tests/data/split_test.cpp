// Tests of the train/held-out split: the documented hash, determinism, rate, independence of file
// order and file names.
#include "data/split.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <set>

#include "common/hash.h"
#include "data/loader.h"
#include "data_test_util.h"
#include "test_util.h"

using namespace pcmoe;

TEST_CASE("split hash is FNV-1a-64 over salt then document; decisions are stable", "[unit][data]") {
  CHECK(data::split_hash("doc", "salt") == fnv1a64("saltdoc"));
  // Pinned: a change here silently moves documents between train and held-out across versions.
  // The published FNV-1a-64 test vector: the split must never move silently.
  CHECK(data::split_hash("doc", "") == 0xcaaf3f18f4747fb5ULL);
  DataConfig c;
  c.heldout_permille = 500;
  int heldout = 0, changed_by_salt = 0;
  for (int i = 0; i < 2000; ++i) {
    std::string doc = "document number " + std::to_string(i);
    bool h = data::is_heldout(doc, c);
    CHECK(h == data::is_heldout(doc, c));
    CHECK(h == (data::split_hash(doc, c.split_salt) % 1000 < 500));
    CHECK(data::Splitter(c).heldout(doc) == h);
    heldout += h;
    DataConfig other = c;
    other.split_salt = "another salt";
    changed_by_salt += h != data::is_heldout(doc, other);
  }
  CHECK(heldout > 850);
  CHECK(heldout < 1150);
  CHECK(changed_by_salt > 800);  // a new salt re-draws about half of the decisions
}

TEST_CASE("held-out rate follows heldout_permille; 0 holds out nothing", "[unit][data]") {
  for (int permille : {0, 10, 50, 200, 999}) {
    DataConfig c;
    c.heldout_permille = permille;
    int n = 20000, heldout = 0;
    for (int i = 0; i < n; ++i) heldout += data::is_heldout("fortune #" + std::to_string(i) + "\n", c);
    double expected = n * permille / 1000.0;
    CAPTURE(permille, heldout);
    CHECK(std::abs(heldout - expected) <= 4 * std::sqrt(expected + 1) + 1);
    if (permille == 0) CHECK(heldout == 0);
  }
}

TEST_CASE("the split of a document does not depend on file order or file names", "[unit][data]") {
  std::vector<std::string> docs;
  for (int i = 0; i < 300; ++i) docs.push_back("saying " + std::to_string(i * 7919) + " is wise\n");
  test::TempDir a, b;
  std::string one, odd, even;
  for (size_t i = 0; i < docs.size(); ++i) one += docs[i] + "%\n";
  for (size_t i = docs.size(); i-- > 0;) (i % 2 ? odd : even) += docs[i] + "%\n";
  a.write("all", one);
  b.write("z-odd", odd);
  b.write("a-even", even);
  auto ca = test::one_source(a.path(), "fortune", 300);
  auto cb = test::one_source(b.path(), "fortune", 300);
  std::set<std::string> expected;
  for (const auto& d : docs) {
    if (data::is_heldout(d, ca)) expected.insert(d);
  }
  REQUIRE(expected.size() > 40);
  REQUIRE(expected.size() < 160);
  // The held-out streams (windows of 2 tokens: at most the last document is cut off).
  auto in_a = test::complete_docs(test::heldout_stream(ca));
  auto in_b = test::complete_docs(test::heldout_stream(cb));
  CHECK(in_a.size() >= expected.size() - 1);
  CHECK(in_b.size() >= expected.size() - 1);
  for (const auto& d : in_a) CHECK(expected.count(d) == 1);
  for (const auto& d : in_b) CHECK(expected.count(d) == 1);
  auto sa = data::scan_corpus(ca);
  auto sb = data::scan_corpus(cb);
  CHECK(sa.documents == 300);
  CHECK(sb.files == 2);
  CHECK(sa.heldout_documents == expected.size());
  CHECK(sb.heldout_documents == expected.size());
  CHECK(sa.train_documents == 300 - expected.size());
}
