// Tests of corpus enumeration: sorted order, recursion, globs, symlink dedupe, errors naming paths.
#include "data/sources.h"

#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "common/error.h"
#include "data_test_util.h"
#include "test_util.h"

using namespace pcmoe;

namespace {

std::vector<std::string> names(const std::vector<data::SourceFile>& files, const std::string& root) {
  std::vector<std::string> out;
  for (const auto& f : files) out.push_back(f.path.substr(root.size() + 1));
  return out;
}

DataSource dir_source(const std::string& path) {
  DataSource s;
  s.path = path;
  return s;
}

}  // namespace

TEST_CASE("list_files walks directories in sorted path order", "[unit][data]") {
  test::TempDir dir;
  dir.write("b.txt", "b");
  dir.write("a/z.txt", "z");
  dir.write("a/y/x.txt", "x");
  dir.write("a.txt", "a");
  dir.write("c/d.txt", "d");
  auto src = dir_source(dir.path());
  CHECK(names(data::list_files(src), dir.path()) ==
        std::vector<std::string>{"a.txt", "a/y/x.txt", "a/z.txt", "b.txt", "c/d.txt"});
  src.recursive = false;
  CHECK(names(data::list_files(src), dir.path()) == std::vector<std::string>{"a.txt", "b.txt"});
  // A source naming a file yields that file, globs or not.
  auto one = dir_source(dir.path() + "/b.txt");
  one.include = {"*.md"};
  REQUIRE(data::list_files(one).size() == 1);
  CHECK(data::list_files(one)[0].path == dir.path() + "/b.txt");
}

TEST_CASE("include and exclude globs match file names", "[unit][data]") {
  test::TempDir dir;
  for (const char* n : {"art", "art.dat", "linux", "linux.dat", "notes.md", "sub/deep.h", "sub/deep.c"}) {
    dir.write(n, "x");
  }
  auto src = dir_source(dir.path());
  src.exclude = {"*.dat"};
  CHECK(names(data::list_files(src), dir.path()) ==
        std::vector<std::string>{"art", "linux", "notes.md", "sub/deep.c", "sub/deep.h"});
  src.include = {"*.h", "*.md"};
  CHECK(names(data::list_files(src), dir.path()) == std::vector<std::string>{"notes.md", "sub/deep.h"});
  src.exclude = {"*.md"};
  CHECK(names(data::list_files(src), dir.path()) == std::vector<std::string>{"sub/deep.h"});
  // Globs see the file name only, not the directory.
  src.include = {"sub*"};
  src.exclude = {};
  CHECK_THROWS_WITH(data::list_files(src),
                    Catch::Contains("has no matching file") && Catch::Contains("'sub*'"));
  CHECK(data::glob_match("*.u8", "art.u8"));
  CHECK_FALSE(data::glob_match("*.u8", "art"));
}

TEST_CASE("symlinked duplicates of a file are listed once, symlink loops end", "[unit][data]") {
  test::TempDir dir;
  dir.write("art", "a");
  dir.write("zoo", "z");
  REQUIRE(::symlink("art", (dir.path() + "/art.u8").c_str()) == 0);
  REQUIRE(::symlink("zoo", (dir.path() + "/aardvark").c_str()) == 0);  // sorts before its target
  test::TempDir other;
  other.write("ext", "e");
  REQUIRE(::symlink((other.path() + "/ext").c_str(), (dir.path() + "/link-to-ext").c_str()) == 0);
  REQUIRE(::symlink(".", (dir.path() + "/loop").c_str()) == 0);
  auto files = data::list_files(dir_source(dir.path()));
  // The first path in sorted order wins; the loop adds nothing new.
  CHECK(names(files, dir.path()) == std::vector<std::string>{"aardvark", "art", "link-to-ext"});
  // Two sources naming the same file: the first source keeps it.
  DataConfig c;
  c.sources = {dir_source(other.path()), dir_source(dir.path())};
  auto all = data::list_files(c);
  REQUIRE(all.size() == 3);
  CHECK(all[0].path == other.path() + "/ext");
  CHECK(all[0].source == 0);
  CHECK(all[1].source == 1);
}

TEST_CASE("missing paths, dangling symlinks and empty sources are data errors naming the path",
          "[unit][data]") {
  test::TempDir dir;
  std::string missing = dir.path() + "/nope";
  CHECK_THROWS_AS(data::list_files(dir_source(missing)), DataError);
  CHECK_THROWS_WITH(data::list_files(dir_source(missing)), Catch::Contains("'" + missing + "'"));
  CHECK_THROWS_WITH(data::list_files(dir_source(dir.path())),
                    Catch::Contains("'" + dir.path() + "' has no matching file"));
  dir.write("ok.txt", "fine");
  REQUIRE(::symlink("gone", (dir.path() + "/broken").c_str()) == 0);
  CHECK_THROWS_WITH(data::list_files(dir_source(dir.path())),
                    Catch::Contains(dir.path() + "/broken") && Catch::Contains("dangling symlink"));
  CHECK_THROWS_AS(data::list_files(DataConfig{}), DataError);
  CHECK_THROWS_AS(data::parse_format("csv"), ConfigError);
  CHECK(data::parse_format("fortune") == data::Format::fortune);
  CHECK(data::format_name(data::parse_format("auto")) == "auto");
}

TEST_CASE("a missing or unreadable file is a data error naming it", "[unit][data]") {
  test::TempDir dir;
  std::string gone = dir.path() + "/gone.txt";
  CHECK_THROWS_WITH(data::DocumentReader(gone, data::Format::text),
                    Catch::Contains("'" + gone + "' cannot be opened: No such file"));
  std::string path = dir.write("secret.txt", "hidden text\n");
  REQUIRE(::chmod(path.c_str(), 0) == 0);
  if (::access(path.c_str(), R_OK) == 0) {
    SUCCEED("running with permission to read mode-000 files (root): nothing to check");
    return;
  }
  CHECK_THROWS_WITH(data::list_files(dir_source(dir.path())),
                    Catch::Contains("'" + path + "' is not readable"));
  CHECK_THROWS_AS(data::DocumentReader(path, data::Format::text), DataError);
  CHECK_THROWS_WITH(data::DocumentReader(path, data::Format::text),
                    Catch::Contains("'" + path + "' cannot be opened"));
}
