// Time read through an interface, so that tests and fuzzers control it: the session's timeouts
// and pings, the pool's keep-warm and round trips, the coalescer's deadlines, request durations.
//
//   Clock* clock = SystemClock();          // Production: std::chrono::steady_clock.
//   const uint64_t start = clock->NowNs();
//   ...
//   const uint64_t elapsed_ns = clock->NowNs() - start;
//
// Tests use tb::client_core::testing::FakeClock (client_core/testing/fake_clock.h).
#pragma once

#include <cstdint>

namespace tb {

class Clock {
 public:
  virtual ~Clock() = default;
  // Nanoseconds since the clock's epoch; never decreases. Callable from any thread.
  virtual uint64_t NowNs() = 0;
};

// std::chrono::steady_clock: monotonic, its epoch unspecified (only differences mean anything).
// The returned object lives forever.
Clock* SystemClock();

}  // namespace tb
