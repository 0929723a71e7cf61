// Tests of document splitting: text, fortune, lines, auto-detection, document size caps, and gzip
// (plain, multi-member, with a dictzip-style extra field, corrupt, truncated).
#include "data/documents.h"

#include <zlib.h>

#include <catch2/catch.hpp>
#include <cstring>

#include "common/error.h"
#include "common/fs.h"
#include "data_test_util.h"
#include "test_util.h"

using namespace pcmoe;
using data::Format;
using data::kMaxDocumentBytes;
using Docs = std::vector<std::string>;

TEST_CASE("fortune format: % lines separate documents, empty ones are skipped", "[unit][data]") {
  test::TempDir dir;
  auto p =
      dir.write("f", "%\nFirst\nfortune.\n%\nSecond.\n%\n%\n  \n%\n50% off\n%%\n %\nlast, no trailing %");
  CHECK(test::read_docs(p, Format::fortune) ==
        Docs{"First\nfortune.\n", "Second.\n", "50% off\n%%\n %\nlast, no trailing %"});
  p = dir.write("g", "A\n%\nB\n%");  // a final separator without a newline
  CHECK(test::read_docs(p, Format::fortune) == Docs{"A\n", "B\n"});
  p = dir.write("crlf", "A\r\n%\r\nB\r\n");
  CHECK(test::read_docs(p, Format::fortune) == Docs{"A\r\n", "B\r\n"});
  p = dir.write("empty", "");
  CHECK(test::read_docs(p, Format::fortune).empty());
}

TEST_CASE("lines format: each non-blank line is a document", "[unit][data]") {
  test::TempDir dir;
  auto p = dir.write("l", "one\n\ntwo\r\n   \n%\nthree");
  CHECK(test::read_docs(p, Format::lines) == Docs{"one", "two", "%", "three"});
}

TEST_CASE("text format: the whole file is one document; blank files give none", "[unit][data]") {
  test::TempDir dir;
  auto p = dir.write("t", "line 1\n%\nline 2\n");
  CHECK(test::read_docs(p, Format::text) == Docs{"line 1\n%\nline 2\n"});
  CHECK(test::read_docs(dir.write("blank", " \n\t\n"), Format::text).empty());
}

TEST_CASE("auto format: fortune if the first 64 KiB hold a % line, else text", "[unit][data]") {
  test::TempDir dir;
  auto f = dir.write("f", "A\n%\nB\n");
  data::DocumentReader r(f, Format::automatic);
  std::string_view d;
  REQUIRE(r.next(&d));
  CHECK(r.format() == Format::fortune);
  CHECK(d == "A\n");
  CHECK(test::read_docs(f, Format::automatic) == Docs{"A\n", "B\n"});
  CHECK(test::read_docs(dir.write("pct", "it is 50%\n% not alone\n"), Format::automatic) ==
        Docs{"it is 50%\n% not alone\n"});
  CHECK(test::read_docs(dir.write("only", "A\n%"), Format::automatic) == Docs{"A\n"});
  std::string late(data::kFormatDetectBytes, 'x');
  late += "\n%\ntail\n";
  CHECK(test::read_docs(dir.write("late", late), Format::automatic).size() == 1);
  CHECK(data::has_fortune_separator("a\n%\n", false));
  CHECK(data::has_fortune_separator("%", true));
  CHECK_FALSE(data::has_fortune_separator("a\n%", false));
}

TEST_CASE("documents longer than 1 MiB are cut into 1 MiB pieces", "[unit][data]") {
  test::TempDir dir;
  std::string big;
  for (size_t i = 0; big.size() < 2 * kMaxDocumentBytes + kMaxDocumentBytes / 2; ++i) {
    big += "line " + std::to_string(i) + " of a long document\n";
  }
  auto join = [](const Docs& docs, size_t n) {
    std::string s;
    for (size_t i = 0; i < n; ++i) s += docs[i];
    return s;
  };
  SECTION("text") {
    auto docs = test::read_docs(dir.write("t", big), Format::text);
    REQUIRE(docs.size() == 3);
    CHECK(docs[0].size() == kMaxDocumentBytes);
    CHECK(docs[1].size() == kMaxDocumentBytes);
    CHECK(join(docs, 3) == big);
  }
  SECTION("fortune, many lines, then more documents") {
    auto docs = test::read_docs(dir.write("f", big + "%\nsmall\n%\n"), Format::fortune);
    REQUIRE(docs.size() == 4);
    CHECK(docs[0].size() == kMaxDocumentBytes);
    CHECK(join(docs, 3) == big);
    CHECK(docs[3] == "small\n");
  }
  SECTION("fortune, one endless line") {
    std::string line(3 * kMaxDocumentBytes + 7, 'y');
    auto docs = test::read_docs(dir.write("f", "%\n" + line + "\n%\nafter\n"), Format::fortune);
    REQUIRE(docs.size() == 5);
    for (size_t i = 0; i < 3; ++i) CHECK(docs[i].size() == kMaxDocumentBytes);
    CHECK(join(docs, 4) == line + "\n");
    CHECK(docs[4] == "after\n");
  }
  SECTION("lines") {
    std::string line(kMaxDocumentBytes + kMaxDocumentBytes / 2, 'z');
    auto docs = test::read_docs(dir.write("l", "first\n" + line + "\r\nlast\n"), Format::lines);
    REQUIRE(docs.size() == 4);
    CHECK(docs[0] == "first");
    CHECK(docs[1].size() == kMaxDocumentBytes);
    CHECK(docs[1] + docs[2] == line);
    CHECK(docs[3] == "last");
  }
}

TEST_CASE("gzip files are read transparently, including multi-member and extra-field headers",
          "[unit][data]") {
  test::TempDir dir;
  const std::string text = "Alpha.\n%\nBeta\nis here.\n%\nGamma.\n";
  const Docs expected{"Alpha.\n", "Beta\nis here.\n", "Gamma.\n"};
  std::string gz = dir.path() + "/f.gz";
  test::write_gz(gz, text);
  CHECK(test::read_docs(gz, Format::fortune) == expected);
  CHECK(test::read_docs(gz, Format::automatic) == expected);
  CHECK(data::FileReader(gz).compressed());
  CHECK_FALSE(data::FileReader(dir.write("plain", text)).compressed());

  std::string multi = dir.path() + "/m.gz";
  test::write_gz(multi, "Alpha.\n%\nBeta\n");
  test::write_gz(multi, "is here.\n%\nGamma.\n", "ab");
  CHECK(test::read_docs(multi, Format::fortune) == expected);

  // dictzip (.dict.dz) is gzip with an FEXTRA field: write one such header with zlib.
  std::string dz = dir.path() + "/words.dict.dz";
  {
    z_stream zs{};
    REQUIRE(deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK);
    unsigned char extra[] = {'R', 'A', 6, 0, 1, 0, 0, 0x40, 1, 0};
    gz_header h{};
    h.extra = extra;
    h.extra_len = sizeof(extra);
    REQUIRE(deflateSetHeader(&zs, &h) == Z_OK);
    std::string out(4096, '\0');
    zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(text.data()));
    zs.avail_in = static_cast<uInt>(text.size());
    zs.next_out = reinterpret_cast<Bytef*>(out.data());
    zs.avail_out = static_cast<uInt>(out.size());
    REQUIRE(deflate(&zs, Z_FINISH) == Z_STREAM_END);
    out.resize(zs.total_out);
    deflateEnd(&zs);
    fs::atomic_write(dz, out);
  }
  CHECK(test::read_docs(dz, Format::fortune) == expected);
}

TEST_CASE("corrupt or truncated gzip data is a data error naming the file", "[unit][data]") {
  test::TempDir dir;
  std::string text;
  for (int i = 0; i < 2000; ++i) text += "fortune number " + std::to_string(i) + "\n%\n";
  std::string good = dir.path() + "/good.gz";
  test::write_gz(good, text);
  REQUIRE(test::read_docs(good, Format::fortune).size() == 2000);
  std::string bytes = fs::read_file(good);

  std::string flipped = bytes;
  for (size_t i = 20; i < 60; ++i) flipped[i] = static_cast<char>(flipped[i] ^ 0x5a);
  auto bad = dir.write("flipped.gz", flipped);
  CHECK_THROWS_AS(test::read_docs(bad, Format::fortune), DataError);
  CHECK_THROWS_WITH(test::read_docs(bad, Format::fortune), Catch::Contains("'" + bad + "'"));

  auto cut = dir.write("cut.gz", bytes.substr(0, bytes.size() / 2));
  CHECK_THROWS_WITH(test::read_docs(cut, Format::fortune),
                    Catch::Contains("'" + cut + "'") && Catch::Contains("corrupt or truncated"));

  std::string crc = bytes;
  crc[crc.size() - 6] = static_cast<char>(crc[crc.size() - 6] ^ 1);  // inside the CRC-32 trailer
  auto bad_crc = dir.write("crc.gz", crc);
  CHECK_THROWS_AS(test::read_docs(bad_crc, Format::fortune), DataError);

  auto magic_only = dir.write("magic.gz", std::string("\x1f\x8b", 2));
  CHECK_THROWS_AS(test::read_docs(magic_only, Format::text), DataError);
}
