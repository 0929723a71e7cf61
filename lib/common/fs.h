// Owns file-system helpers: atomic file replacement (temp file, fsync, rename, fsync directory),
// whole-file reads, directory creation. Errors throw pcmoe::Error naming the path and errno text.
// Files written atomically are private by default (mode 0600 from their creation: checkpoints,
// exported models and pools hold weights nobody else may read); a failed write (disk full, a file
// size limit) removes its temp file and leaves the previous file as it was.
#pragma once

#include <functional>
#include <string>
#include <string_view>

namespace pcmoe::fs {

// Writes `data` to `path` atomically: readers see the old file or the new one, never a torn one.
void atomic_write(const std::string& path, std::string_view data, unsigned mode = 0600);
// Same, streaming: `writer` is called with a function that appends bytes to the temp file.
void atomic_write_stream(const std::string& path,
                         const std::function<void(const std::function<void(const void*, size_t)>&)>& writer,
                         unsigned mode = 0600);
std::string read_file(const std::string& path);
bool exists(const std::string& path);
bool is_dir(const std::string& path);
// mkdir -p; throws on failure.
void make_dirs(const std::string& path);
std::string dirname(const std::string& path);
std::string join(const std::string& a, const std::string& b);

}  // namespace pcmoe::fs
