// Owns the hub's side effects on disk, behind a small interface so HubState can be tested without
// files: the expert-load log (<out_dir>/expert_load.jsonl, one JSON object per step), the expert
// pool (<out_dir>/pool.pcmoe, a pcmoe tensor file) and the hub's state (<out_dir>/hub_state.json);
// and the path of <out_dir>/ctl.json, which HubServer writes.
// Pool and state are replaced atomically (temp file, fsync, rename). Failures throw pcmoe::Error
// naming the path. Used by one thread (HubState's owner).
#pragma once

#include <string>
#include <string_view>

#include "common/tensor_file.h"

namespace pcmoe::hub {

class HubStore {
 public:
  virtual ~HubStore() = default;
  virtual void append_expert_load(std::string_view json_line) = 0;  // without the newline
  virtual void write_pool(const TensorFile& pool) = 0;
  virtual void write_state(std::string_view json) = 0;
  virtual std::string describe() const = 0;  // where things go, for logs and acks
};

class FileHubStore : public HubStore {
 public:
  // Creates out_dir if needed.
  explicit FileHubStore(std::string out_dir);
  ~FileHubStore() override;
  FileHubStore(const FileHubStore&) = delete;
  FileHubStore& operator=(const FileHubStore&) = delete;

  void append_expert_load(std::string_view json_line) override;
  void write_pool(const TensorFile& pool) override;
  void write_state(std::string_view json) override;
  std::string describe() const override { return out_dir_; }

  std::string pool_path() const;
  std::string state_path() const;
  std::string load_path() const;
  std::string ctl_path() const;  // ctl.json, written by HubServer (how pcmoe-ctl reaches this hub)

 private:
  std::string out_dir_;
  int load_fd_ = -1;  // expert_load.jsonl, opened on first append
};

}  // namespace pcmoe::hub
