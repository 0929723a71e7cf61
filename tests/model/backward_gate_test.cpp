// The backward gate (model/backward_gate.h): a host's backward pass while a trainer of the same
// process waits inside its own backward runs on the waiting thread; alone otherwise. On CUDA the
// [gpu] case is the deadlock it prevents: the waiting node holds the device's autograd thread.
#include <catch2/catch.hpp>

#include <torch/torch.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <stdexcept>
#include <thread>

#include "model/backward_gate.h"

using pcmoe::model::BackwardGate;
using namespace std::chrono_literals;

namespace {

// Runs `fn` on a thread of its own; a deadlock ends the test binary (a hung thread cannot be
// joined) with a message instead of hanging the suite.
void within(std::chrono::seconds limit, const char* what, std::function<void()> fn) {
  std::promise<void> done;
  auto f = done.get_future();
  std::thread([&fn, &done] {
    try {
      fn();
      done.set_value();
    } catch (...) {
      done.set_exception(std::current_exception());
    }
  }).detach();
  if (f.wait_for(limit) != std::future_status::ready) {
    std::fprintf(stderr, "backward_gate_test: %s did not finish within %lld s (deadlock)\n", what,
                 static_cast<long long>(limit.count()));
    std::_Exit(3);
  }
  f.get();
}

// The shape of a party in concurrent rounds, in one process: the trainer's backward reaches a node
// that waits for a host (another thread) to finish a backward pass of its own on `device`. Returns
// the host's gradient (expected: 3, the derivative of 3w) and where the host's pass ran.
struct CrossResult {
  double host_grad = 0;
  bool host_ran_on_waiting_thread = false;
  double trainer_grad = 0;
};

struct Shared {
  BackwardGate* gate = nullptr;
  torch::Device device = torch::kCPU;
  std::atomic<bool> host_done{false};
  std::thread::id waiting_thread, host_pass_thread;
  double host_grad = 0;
  std::thread host;
};
Shared* shared = nullptr;  // the test's, for the autograd function (static members only)

class WaitsForHost : public torch::autograd::Function<WaitsForHost> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext*, torch::Tensor x) { return x.clone(); }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext*,
                                                 torch::autograd::variable_list g) {
    Shared& s = *shared;
    BackwardGate::ServingScope serving;
    s.waiting_thread = std::this_thread::get_id();
    s.host = std::thread([&s] {  // the expert service: another party's request arrives now
      auto w = torch::full({4}, 2.0, torch::TensorOptions().device(s.device).requires_grad(true));
      auto y = (w * 3.0).sum();
      s.gate->run([&] {
        s.host_pass_thread = std::this_thread::get_id();
        torch::autograd::backward({y}, {torch::ones_like(y)});
      });
      s.host_grad = w.grad()[0].item<double>();
      s.host_done = true;
    });
    while (!s.host_done.load()) {  // a requester's wait for replies: it serves in between
      if (s.gate->serve() == 0) std::this_thread::sleep_for(1ms);
    }
    s.host.join();
    return {g[0] * 5.0};
  }
};

CrossResult cross_backward(BackwardGate& gate, torch::Device device) {
  Shared s;
  s.gate = &gate;
  s.device = device;
  shared = &s;
  auto x = torch::ones({3}, torch::TensorOptions().device(device).requires_grad(true));
  auto loss = WaitsForHost::apply(x * 2.0).sum();
  {
    BackwardGate::TrainerScope trainer(gate);
    loss.backward();
  }
  shared = nullptr;
  CrossResult r;
  r.host_grad = s.host_grad;
  r.host_ran_on_waiting_thread = s.host_pass_thread == s.waiting_thread;
  r.trainer_grad = x.grad()[0].item<double>();
  return r;
}

}  // namespace

TEST_CASE("backward gate: alone without a trainer, on the waiting thread during one", "[unit]") {
  BackwardGate gate;
  const auto me = std::this_thread::get_id();
  std::thread::id ran;
  gate.run([&] { ran = std::this_thread::get_id(); });
  CHECK(ran == me);
  CHECK(gate.ran_alone() == 1);
  CHECK(gate.serve() == 0);  // not in a serving scope: nothing to do

  std::atomic<int> woken{0};
  const int id = gate.add_waker([&] { woken++; });
  std::thread host;
  {
    BackwardGate::TrainerScope trainer(gate);
    BackwardGate::ServingScope serving;
    host = std::thread([&] { gate.run([&] { ran = std::this_thread::get_id(); }); });
    within(30s, "serving a queued pass", [&] {
      while (woken.load() == 0) std::this_thread::sleep_for(1ms);
    });
    CHECK(gate.serve() == 1);
    host.join();
  }
  CHECK(ran == me);
  CHECK(gate.served() == 1);
  gate.remove_waker(id);

  SECTION("a pass nobody serves runs on its own thread once the trainer leaves backward") {
    std::thread::id host_id;
    {
      BackwardGate::TrainerScope trainer(gate);
      host = std::thread([&] {
        host_id = std::this_thread::get_id();
        gate.run([&] { ran = std::this_thread::get_id(); });
      });
      std::this_thread::sleep_for(20ms);  // queued, not served: this thread is not waiting in a node
    }
    host.join();
    CHECK(ran == host_id);
    CHECK(gate.served() == 1);
    CHECK(gate.ran_alone() == 2);
  }
  SECTION("a served pass's exception reaches its host; in a serving scope run is in place") {
    std::string what;
    {
      BackwardGate::TrainerScope trainer(gate);
      host = std::thread([&] {
        try {
          gate.run([] { throw std::runtime_error("out of memory"); });
        } catch (const std::exception& e) {
          what = e.what();
        }
      });
      within(30s, "serving a throwing pass", [&] {
        BackwardGate::ServingScope serving;  // thread-local: on the thread that serves
        while (gate.served() < 2) gate.serve();
      });
      host.join();
      BackwardGate::ServingScope serving;
      int inline_runs = 0;
      gate.run([&] { inline_runs++; });  // a waiting node's own in-process link: no queue
      CHECK(inline_runs == 1);
    }
    CHECK(what == "out of memory");
  }
}

TEST_CASE("backward gate: a host's pass inside a trainer's backward (CPU)", "[unit]") {
  BackwardGate gate;
  CrossResult r;
  within(60s, "the cross backward on the CPU", [&] { r = cross_backward(gate, torch::kCPU); });
  CHECK(r.host_grad == 3.0);
  CHECK(r.trainer_grad == 10.0);
  CHECK(r.host_ran_on_waiting_thread);
  CHECK(gate.served() == 1);
}

TEST_CASE("backward gate: a host's pass inside a trainer's backward on CUDA does not deadlock", "[gpu]") {
  if (!torch::cuda::is_available()) FAIL("no CUDA device");
  BackwardGate gate;
  CrossResult r;
  // Without the gate the host's pass queues on the device's autograd thread, which the waiting
  // node holds: this never returns (the binary exits 3).
  within(60s, "the cross backward on CUDA",
         [&] { r = cross_backward(gate, torch::Device(torch::kCUDA, 0)); });
  CHECK(r.host_grad == 3.0);
  CHECK(r.trainer_grad == 10.0);
  CHECK(r.host_ran_on_waiting_thread);  // the device's autograd thread, re-entrant
  CHECK(gate.served() == 1);
}
