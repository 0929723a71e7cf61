// Schema and validation of the `data:` block (see data_config.h).
#include "common/data_config.h"

#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

namespace pcmoe {

config::Schema<DataSource> data_source_schema() {
  config::Schema<DataSource> s;
  s.field("path", &DataSource::path, "a text file (plain or gzip/dictzip) or a directory of them",
          config::non_empty())
      .field("format", &DataSource::format,
             "document boundaries: text (a file is a document), fortune ('%' lines separate documents), "
             "lines (a line is a document), auto (fortune if the file has '%' separator lines, else text)",
             config::one_of({"auto", "text", "fortune", "lines"}))
      .field("include", &DataSource::include, "file-name globs to take, e.g. ['*.h'] (empty: all files)")
      .field("exclude", &DataSource::exclude, "file-name globs to skip, e.g. ['*.dat', '*.u8']")
      .field("recursive", &DataSource::recursive, "descend into sub-directories");
  return s;
}

config::Schema<DataConfig> data_schema() {
  config::Schema<DataConfig> s;
  s.list("sources", &DataConfig::sources, data_source_schema(), "the private corpora of this participant")
      .field("heldout_permille", &DataConfig::heldout_permille,
             "documents whose salted content hash mod 1000 is below this are held out (never trained on)",
             config::in_range(0, 999))
      .field("split_salt", &DataConfig::split_salt, "salt of the held-out split hash")
      .field("shuffle_buffer", &DataConfig::shuffle_buffer, "packed sequences kept in the shuffle buffer",
             config::positive<int>())
      .field("seed", &DataConfig::seed, "seed of the file and sequence order");
  return s;
}

void validate(const DataConfig& d, const config::Origins& o, const std::string& prefix) {
  std::string errors;
  if (d.sources.empty()) {
    errors = fmt::format("{}: no data sources (add at least one entry with a path)",
                         o.describe(prefix + ".sources"));
  }
  for (size_t i = 0; i < d.sources.size(); ++i) {
    const auto& src = d.sources[i];
    std::string key = fmt::format("{}.sources[{}].path", prefix, i);
    struct stat st {};
    std::string problem;
    if (::stat(src.path.c_str(), &st) != 0) {
      problem = "does not exist";
    } else if (::access(src.path.c_str(), R_OK) != 0) {
      problem = "is not readable";
    } else if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode)) {
      problem = "is neither a file nor a directory";
    }
    if (!problem.empty()) {
      if (!errors.empty()) errors += "\n";
      errors += fmt::format("{}: data path '{}' {} (fix the path, or install the corpus: scripts/setup.sh)",
                            o.describe(key), src.path, problem);
    }
  }
  if (!errors.empty()) throw ConfigError(errors);
}

}  // namespace pcmoe
