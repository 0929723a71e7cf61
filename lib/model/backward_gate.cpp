// Routes hosts' backward passes around a trainer's blocked autograd thread (see backward_gate.h).
#include "model/backward_gate.h"

#include <algorithm>

namespace pcmoe::model {
namespace {
thread_local int serving_depth = 0;  // ServingScopes open on this thread
}  // namespace

BackwardGate& BackwardGate::instance() {
  static BackwardGate gate;
  return gate;
}

BackwardGate::TrainerScope::TrainerScope(BackwardGate& gate) : gate_(gate) {
  std::unique_lock<std::mutex> lock(gate_.mu_);
  gate_.cv_.wait(lock, [this] { return gate_.running_alone_ == 0; });
  gate_.trainers_++;
}

BackwardGate::TrainerScope::~TrainerScope() {
  std::lock_guard<std::mutex> lock(gate_.mu_);
  gate_.trainers_--;
  gate_.cv_.notify_all();  // jobs nobody served go back to their hosts' threads
}

BackwardGate::ServingScope::ServingScope() { serving_depth++; }
BackwardGate::ServingScope::~ServingScope() { serving_depth--; }

void BackwardGate::run_alone(std::unique_lock<std::mutex>& lock, const std::function<void()>& backward) {
  running_alone_++;
  ran_alone_++;
  lock.unlock();
  std::exception_ptr error;
  try {
    backward();
  } catch (...) {
    error = std::current_exception();
  }
  lock.lock();
  running_alone_--;
  cv_.notify_all();
  if (error) std::rethrow_exception(error);
}

void BackwardGate::run(const std::function<void()>& backward) {
  if (serving_depth > 0) {  // called from a waiting node itself (an in-process link): in place
    backward();
    return;
  }
  std::unique_lock<std::mutex> lock(mu_);
  if (trainers_ == 0) {
    run_alone(lock, backward);
    return;
  }
  auto job = std::make_shared<Job>();
  job->fn = &backward;
  queue_.push_back(job);
  for (const auto& [id, wake] : wakers_) wake();  // under the lock: a waker is never called once removed
  cv_.wait(lock, [&] { return job->done || (trainers_ == 0 && !job->taken); });
  if (!job->done) {  // the trainer left backward without serving it
    queue_.erase(std::remove(queue_.begin(), queue_.end(), job), queue_.end());
    run_alone(lock, backward);
    return;
  }
  if (job->error) std::rethrow_exception(job->error);
}

int BackwardGate::serve() {
  if (serving_depth == 0) return 0;
  int n = 0;
  while (true) {
    std::shared_ptr<Job> job;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (queue_.empty()) return n;
      job = queue_.front();
      queue_.pop_front();
      job->taken = true;
    }
    std::exception_ptr error;
    try {
      (*job->fn)();
    } catch (...) {
      error = std::current_exception();
    }
    std::lock_guard<std::mutex> lock(mu_);
    job->error = error;
    job->done = true;
    served_++;
    cv_.notify_all();
    n++;
  }
}

int BackwardGate::add_waker(std::function<void()> wake) {
  std::lock_guard<std::mutex> lock(mu_);
  wakers_[next_waker_] = std::move(wake);
  return next_waker_++;
}

void BackwardGate::remove_waker(int id) {
  std::lock_guard<std::mutex> lock(mu_);
  wakers_.erase(id);
}

uint64_t BackwardGate::served() const {
  std::lock_guard<std::mutex> lock(mu_);
  return served_;
}

uint64_t BackwardGate::ran_alone() const {
  std::lock_guard<std::mutex> lock(mu_);
  return ran_alone_;
}

}  // namespace pcmoe::model
