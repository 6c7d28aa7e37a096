#include "proxy/app/io_loop.h"

#include "absl/time/clock.h"
#include "asio.hpp"

namespace tb::proxy {

void RunIoContext(asio::io_context& io, absl::Duration busy_poll) {
  if (busy_poll <= absl::ZeroDuration()) {
    io.run();
    return;
  }
  while (!io.stopped()) {
    if (io.poll() > 0) continue;
    const absl::Time poll_until = absl::Now() + busy_poll;
    bool ran = false;
    while (!ran && !io.stopped() && absl::Now() < poll_until) ran = io.poll() > 0;
    if (!ran) io.run_one();  // Sleeps until the next event (or returns once out of work).
  }
}

}  // namespace tb::proxy
