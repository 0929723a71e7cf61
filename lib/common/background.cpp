// Long work on a helper thread, periodic duty on this one (see background.h).
#include "common/background.h"

#include <exception>
#include <future>

namespace pcmoe {

void run_with_ticks(const std::function<void()>& work, const std::function<void()>& tick,
                    std::chrono::milliseconds period) {
  std::future<void> done = std::async(std::launch::async, work);
  std::exception_ptr tick_error;
  while (done.wait_for(period) != std::future_status::ready) {
    if (tick_error) continue;
    try {
      tick();
    } catch (...) {
      tick_error = std::current_exception();
    }
  }
  done.get();  // rethrows work's exception
  if (tick_error) std::rethrow_exception(tick_error);
}

}  // namespace pcmoe
