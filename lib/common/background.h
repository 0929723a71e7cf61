// Owns running long local work (writing a checkpoint or an exported model) off the calling thread
// while the calling thread keeps doing a small periodic duty (a daemon's heartbeat), so that a
// multi-gigabyte file write does not make the hub declare a party lost.
#pragma once

#include <chrono>
#include <functional>

namespace pcmoe {

// Runs `work` on a helper thread; meanwhile calls `tick` on this thread about every `period`
// until `work` has returned. Returns once both are done. An exception of `work` is rethrown here;
// one of `tick` stops the ticking and is rethrown after `work` has finished (work's own exception
// wins). `work` must not use what `tick` uses.
void run_with_ticks(const std::function<void()>& work, const std::function<void()>& tick,
                    std::chrono::milliseconds period);

}  // namespace pcmoe
