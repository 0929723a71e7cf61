// The hub's files (see hub_store.h).
#include "hub/hub_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/error.h"
#include "common/fs.h"

namespace pcmoe::hub {

FileHubStore::FileHubStore(std::string out_dir) : out_dir_(std::move(out_dir)) { fs::make_dirs(out_dir_); }

FileHubStore::~FileHubStore() {
  if (load_fd_ >= 0) ::close(load_fd_);
}

std::string FileHubStore::pool_path() const { return fs::join(out_dir_, "pool.pcmoe"); }
std::string FileHubStore::state_path() const { return fs::join(out_dir_, "hub_state.json"); }
std::string FileHubStore::load_path() const { return fs::join(out_dir_, "expert_load.jsonl"); }
std::string FileHubStore::ctl_path() const { return fs::join(out_dir_, "ctl.json"); }

void FileHubStore::append_expert_load(std::string_view json_line) {
  if (load_fd_ < 0) {
    load_fd_ = ::open(load_path().c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    PCMOE_CHECK(load_fd_ >= 0, "cannot open '{}': {}", load_path(), std::strerror(errno));
  }
  std::string line(json_line);
  line += '\n';
  // One write per line (O_APPEND): a reader tailing the file never sees half a line.
  ssize_t n = ::write(load_fd_, line.data(), line.size());
  PCMOE_CHECK(n == static_cast<ssize_t>(line.size()), "cannot append to '{}': {}", load_path(),
              n < 0 ? std::strerror(errno) : "short write");
}

void FileHubStore::write_pool(const TensorFile& pool) { write_tensor_file(pool_path(), pool); }

void FileHubStore::write_state(std::string_view json) {
  fs::atomic_write(state_path(), std::string(json) + "\n");
}

}  // namespace pcmoe::hub
