#include "proxy/app/io_loop.h"

#include <algorithm>

#include "absl/time/clock.h"
#include "asio.hpp"

namespace tb::proxy {

void RunIoContext(asio::io_context& io, IoLoopPolling polling) {
  if (polling.busy_poll <= absl::ZeroDuration() && polling.poll_hint == nullptr) {
    io.run();
    return;
  }
  while (!io.stopped()) {
    if (io.poll() > 0) continue;
    absl::Duration poll_for = polling.busy_poll;
    if (polling.poll_hint != nullptr) poll_for = std::max(poll_for, polling.poll_hint());
    bool ran = false;
    if (poll_for > absl::ZeroDuration()) {
      const absl::Time poll_until = absl::Now() + poll_for;
      while (!ran && !io.stopped() && absl::Now() < poll_until) ran = io.poll() > 0;
    }
    if (!ran) io.run_one();  // Sleeps until the next event (or returns once out of work).
  }
}

}  // namespace tb::proxy
