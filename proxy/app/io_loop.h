// Runs an Asio io_context on the calling thread, optionally busy-polling before each sleep.
//
// A thread that sleeps in epoll_wait pays a wake-up on every event; on a virtual machine that
// is tens of microseconds, several times per call for the thread that runs the cluster
// sessions. With `busy_poll` > 0 the thread keeps polling that long after its last handler
// before it sleeps: under steady light load it never sleeps (lower latency, up to one CPU
// spent), and once traffic stops it sleeps as before (no CPU when idle).
//
//   std::thread pool_thread([&] { RunIoContext(pool_io, config.busy_poll); });
#pragma once

#include "absl/time/time.h"

namespace asio {
class io_context;
}  // namespace asio

namespace tb::proxy {

// Returns when `io` is stopped or runs out of work, like io_context::run().
void RunIoContext(asio::io_context& io, absl::Duration busy_poll);

}  // namespace tb::proxy
