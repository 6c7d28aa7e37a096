// Runs an Asio io_context on the calling thread, optionally polling for a while before each sleep.
//
// A thread that sleeps in epoll_wait pays a wake-up on every event; on a virtual machine that
// is tens of microseconds, several times per call for the thread that runs the cluster
// sessions. Two ways to poll instead:
// - `busy_poll` > 0: the thread keeps polling that long after its last handler before it
//   sleeps. Under steady light load it never sleeps (lower latency, up to one CPU spent); once
//   traffic stops it sleeps as before (no CPU when idle).
// - `poll_hint`: asked each time the thread runs out of handlers; it polls as long as the hint
//   says (e.g. while the reply of a fast cluster is due), then sleeps.
//
//   std::thread pool_thread([&] {
//     RunIoContext(pool_io, {.poll_hint = [&] { return pool.FastReplyWait(window); }});
//   });
#pragma once

#include "absl/functional/any_invocable.h"
#include "absl/time/time.h"

namespace asio {
class io_context;
}  // namespace asio

namespace tb::proxy {

struct IoLoopPolling {
  absl::Duration busy_poll = absl::ZeroDuration();  // After every handler; 0: off.
  // How long to poll before sleeping, asked when no handler is ready; null: never.
  absl::AnyInvocable<absl::Duration()> poll_hint;
};

// Returns when `io` is stopped or runs out of work, like io_context::run().
void RunIoContext(asio::io_context& io, IoLoopPolling polling = {});

}  // namespace tb::proxy
