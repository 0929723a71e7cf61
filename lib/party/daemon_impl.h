// The pcmoe-party daemon's object (internal to lib/party: daemon.cpp runs its loop and carries out
// the session's actions, daemon_startup.cpp holds its start-up steps). See daemon.h for the life
// of the process and its threads.
#pragma once

#include <zmq.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/party_config.h"
#include "net/context.h"
#include "net/curve.h"
#include "party/checkpointer.h"
#include "party/expert_server.h"
#include "party/hub_link.h"
#include "party/party_session.h"
#include "party/peer_links.h"
#include "party/trainer.h"
#include "proto/codec.h"

namespace pcmoe::party {

using Clock = std::chrono::steady_clock;

class Daemon {
 public:
  explicit Daemon(const PartyConfig& cfg) : cfg_(cfg), ctx_(net::default_context()) {}
  int run();

 private:
  // ---- start-up steps ----
  void prepare();
  void start_server();
  void connect_hub();
  void join();
  void build_trainer(const proto::Welcome& w);
  void serve(const proto::Welcome& w);
  void install_host();
  void seed_experts(const proto::Pool& pool);
  // ---- the loop ----
  void pump(int timeout_ms);
  void run_step(const StepOrder& order);
  void execute(std::vector<Action> actions);
  void execute_one(Action& a);
  void apply_directory(const std::vector<proto::PartyEntry>& dir);
  void checkpoint(const std::optional<int64_t>& hub_step);
  void prepare_finish();
  void export_model(const proto::Pool& pool);

  PartyConfig cfg_;
  zmq::context_t& ctx_;
  std::optional<net::CurveKeyPair> keys_;
  proto::Limits limits_;
  std::unique_ptr<ExpertServer> server_;
  std::unique_ptr<HubLink> hub_;
  std::unique_ptr<PartySession> session_;
  std::unique_ptr<PeerLinks> links_;
  std::unique_ptr<PartyTrainer> trainer_;
  std::optional<proto::Welcome> welcome_;
  std::unique_ptr<Checkpointer> checkpointer_;
  uint64_t seed_ = 0;
  double final_loss_ = -1, final_bpb_ = -1;
  bool exit_ = false;
  int exit_code_ = kExitOk;
};

}  // namespace pcmoe::party
