// Corpus enumeration (see sources.h). The file list holds paths only, never contents, so a corpus
// of any size costs a few bytes per file here.
#include "data/sources.h"

#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>
#include <utility>

#include "common/error.h"
#include "common/fs.h"

namespace pcmoe::data {
namespace {

using FileId = std::pair<dev_t, ino_t>;

struct Found {
  std::string path;
  FileId id;
};

struct Walk {
  const DataSource& source;
  std::vector<Found> files;
  std::set<FileId> dirs_seen;  // guards against symlink loops
};

bool wanted(const DataSource& source, const std::string& name) {
  bool included = source.include.empty();
  for (const auto& g : source.include) included = included || glob_match(g, name);
  if (!included) return false;
  for (const auto& g : source.exclude) {
    if (glob_match(g, name)) return false;
  }
  return true;
}

struct stat stat_or_throw(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    int err = errno;
    struct stat lst {};
    bool dangling = ::lstat(path.c_str(), &lst) == 0 && S_ISLNK(lst.st_mode);
    throw DataError("data path '" + path +
                    "' cannot be read: " + (dangling ? std::string("dangling symlink") : std::strerror(err)));
  }
  return st;
}

// Checked while listing so that an unreadable file fails at start, not epochs later.
void check_readable(const std::string& path) {
  if (::faccessat(AT_FDCWD, path.c_str(), R_OK, AT_EACCESS) != 0) {
    throw DataError("data file '" + path + "' is not readable: " + std::strerror(errno));
  }
}

// Names in `dir`, sorted, without "." and "..".
std::vector<std::string> dir_entries(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) throw DataError("data directory '" + dir + "' cannot be opened: " + std::strerror(errno));
  std::vector<std::string> names;
  errno = 0;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name != "." && name != "..") names.push_back(std::move(name));
    errno = 0;
  }
  int err = errno;
  ::closedir(d);
  if (err != 0) throw DataError("data directory '" + dir + "' cannot be listed: " + std::strerror(err));
  std::sort(names.begin(), names.end());
  return names;
}

void walk_dir(Walk& w, const std::string& dir, const struct stat& dir_st) {
  if (!w.dirs_seen.insert({dir_st.st_dev, dir_st.st_ino}).second) return;
  for (const auto& name : dir_entries(dir)) {
    std::string path = fs::join(dir, name);
    struct stat st = stat_or_throw(path);
    if (S_ISDIR(st.st_mode)) {
      if (w.source.recursive) walk_dir(w, path, st);
    } else if (S_ISREG(st.st_mode) && wanted(w.source, name)) {
      check_readable(path);
      w.files.push_back({path, {st.st_dev, st.st_ino}});
    }
    // Sockets, fifos and devices are never data.
  }
}

std::string describe_globs(const DataSource& s) {
  std::string out;
  auto list = [](const std::vector<std::string>& v) {
    std::string r;
    for (const auto& g : v) r += (r.empty() ? "'" : ", '") + g + "'";
    return r;
  };
  if (!s.include.empty()) out += " include [" + list(s.include) + "]";
  if (!s.exclude.empty()) out += " exclude [" + list(s.exclude) + "]";
  return out;
}

std::vector<Found> find_files(const DataSource& source) {
  struct stat st = stat_or_throw(source.path);
  if (S_ISREG(st.st_mode)) {
    check_readable(source.path);
    return {{source.path, {st.st_dev, st.st_ino}}};
  }
  if (!S_ISDIR(st.st_mode))
    throw DataError("data path '" + source.path + "' is neither a file nor a directory");
  Walk w{source, {}, {}};
  walk_dir(w, source.path, st);
  // Paths are sorted as whole strings, so the order does not depend on the walk.
  std::sort(w.files.begin(), w.files.end(), [](const Found& a, const Found& b) { return a.path < b.path; });
  if (w.files.empty()) {
    throw DataError("data source '" + source.path + "' has no matching file" + describe_globs(source) +
                    (source.recursive ? "" : " (recursive: false)"));
  }
  return std::move(w.files);
}

std::vector<SourceFile> collect(const std::vector<DataSource>& sources) {
  std::vector<SourceFile> out;
  std::set<FileId> seen;
  for (size_t i = 0; i < sources.size(); ++i) {
    Format format = parse_format(sources[i].format);
    for (auto& f : find_files(sources[i])) {
      if (seen.insert(f.id).second) out.push_back({std::move(f.path), format, i});
    }
  }
  return out;
}

}  // namespace

Format parse_format(std::string_view name) {
  if (name == "auto") return Format::automatic;
  if (name == "text") return Format::text;
  if (name == "fortune") return Format::fortune;
  if (name == "lines") return Format::lines;
  throw ConfigError("unknown data format '" + std::string(name) + "' (known: auto, text, fortune, lines)");
}

std::string_view format_name(Format format) {
  switch (format) {
    case Format::automatic:
      return "auto";
    case Format::text:
      return "text";
    case Format::fortune:
      return "fortune";
    case Format::lines:
      return "lines";
  }
  return "?";
}

bool glob_match(const std::string& pattern, const std::string& name) {
  return ::fnmatch(pattern.c_str(), name.c_str(), 0) == 0;
}

std::vector<SourceFile> list_files(const DataSource& source, size_t source_index) {
  auto files = collect({source});
  for (auto& f : files) f.source = source_index;
  return files;
}

std::vector<SourceFile> list_files(const DataConfig& config) {
  PCMOE_CHECK_T(DataError, !config.sources.empty(), "data: no sources configured");
  return collect(config.sources);
}

std::string describe_sources(const DataConfig& config) {
  std::string out;
  for (const auto& s : config.sources) out += (out.empty() ? "'" : ", '") + s.path + "'";
  return out.empty() ? "(no sources)" : out;
}

}  // namespace pcmoe::data
