// Owns the enumeration of a corpus: which files the `data.sources` entries name, in a
// deterministic order, without reading their contents. No libtorch.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "common/data_config.h"

namespace pcmoe::data {

// How a file's bytes are cut into documents (see documents.h).
enum class Format { automatic, text, fortune, lines };

// "auto" | "text" | "fortune" | "lines"; throws pcmoe::ConfigError naming the value.
Format parse_format(std::string_view name);
std::string_view format_name(Format format);

struct SourceFile {
  std::string path;  // as reached from the source path (symlinks are not resolved in the name)
  Format format = Format::automatic;
  size_t source = 0;  // index of the source in DataConfig::sources
};

// fnmatch(3) of a file name (not a path) against one glob.
bool glob_match(const std::string& pattern, const std::string& name);

// The files of one source, sorted by path. A source path naming a file yields that file (the
// globs are not applied to it); a directory yields the regular files inside it whose name matches
// an `include` glob (or any name when `include` is empty) and no `exclude` glob, descending into
// sub-directories when `recursive`. Symlinks are followed; a file reached twice (same st_dev and
// st_ino, e.g. `art.u8 -> art`) is listed once, under its first path in sorted order, and a
// directory reached twice is walked once (no symlink loops).
// Throws pcmoe::DataError naming the path when the source path or an entry cannot be stat'ed
// (missing file, dangling symlink), a listed file is not readable, a directory cannot be opened,
// or the source yields no file.
std::vector<SourceFile> list_files(const DataSource& source, size_t source_index = 0);

// The files of every source, in config order, each source sorted; a file listed by an earlier
// source is not listed again. Throws as above.
std::vector<SourceFile> list_files(const DataConfig& config);

// "'path1', 'path2'": the source paths, for error messages.
std::string describe_sources(const DataConfig& config);

}  // namespace pcmoe::data
