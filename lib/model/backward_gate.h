// Keeps a party's expert host from waiting on a backward pass that waits for other hosts.
//
// libtorch runs the backward functions of CUDA tensors on one autograd worker thread per device
// and process, whoever called backward(). A requester's remote-expert node (RemoteCall) blocks that
// thread while it waits for the hosts' replies. In concurrent rounds every party trains at once,
// so a host's own backward of another party's request (torch::autograd::backward on its expert
// service thread) would queue behind its trainer's blocked node on the same device thread, while
// that node waits for a host doing the same: a cycle across processes (seen on the H200: a
// 4-party concurrent federation did not finish 60 rounds in 8 minutes). On the CPU the engine runs
// on the calling thread, so the cycle cannot form there, which is why only CUDA showed it. Time a
// waiting node spends on hosted passes counts as its wait for replies (the step's timeline).
//
// The gate breaks it. A trainer brackets its backward pass (TrainerScope); a requester's node marks
// the time it waits for hosts (ServingScope). A host's backward (run) runs on its own thread when no
// trainer of the process is in backward; otherwise it is handed to the waiting node, which runs it
// inline (a re-entrant backward on the device thread runs in place) between looks at its replies.
// One gate per process (instance); thread-safe.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>

namespace pcmoe::model {

class BackwardGate {
 public:
  static BackwardGate& instance();

  // Around a trainer's loss.backward(): waits for hosts' backward passes already running on their
  // own threads, then routes new ones to this trainer's waiting nodes until it leaves.
  class TrainerScope {
   public:
    explicit TrainerScope(BackwardGate& gate = instance());
    ~TrainerScope();
    TrainerScope(const TrainerScope&) = delete;
    TrainerScope& operator=(const TrainerScope&) = delete;

   private:
    BackwardGate& gate_;
  };
  // Around a backward node's wait for remote replies: this thread may run hosts' backward passes
  // (serve) and runs its own host's in place (run).
  class ServingScope {
   public:
    ServingScope();
    ~ServingScope();
    ServingScope(const ServingScope&) = delete;
    ServingScope& operator=(const ServingScope&) = delete;
  };

  // A host's backward pass: here, now, or by a serving thread; returns when it is done and
  // rethrows what it threw.
  void run(const std::function<void()>& backward);
  // On a thread in a ServingScope: runs the queued backward passes; returns how many. Elsewhere 0.
  int serve();
  // `wake` is called whenever a backward pass is queued (a waiter should look: serve), with the
  // gate's lock held: it must not call the gate.
  int add_waker(std::function<void()> wake);
  void remove_waker(int id);

  // For tests and logs: how many backward passes ran on a serving thread, and how many on their own.
  uint64_t served() const;
  uint64_t ran_alone() const;

 private:
  struct Job {
    const std::function<void()>* fn = nullptr;
    bool taken = false, done = false;
    std::exception_ptr error;
  };
  void run_alone(std::unique_lock<std::mutex>& lock, const std::function<void()>& backward);

  mutable std::mutex mu_;
  std::condition_variable cv_;
  int trainers_ = 0;       // trainers of this process inside backward
  int running_alone_ = 0;  // host backward passes running on their own threads
  std::deque<std::shared_ptr<Job>> queue_;
  std::map<int, std::function<void()>> wakers_;
  int next_waker_ = 0;
  uint64_t served_ = 0, ran_alone_ = 0;
};

}  // namespace pcmoe::model
