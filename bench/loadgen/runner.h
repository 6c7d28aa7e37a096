// The load loop: `callers` concurrent callers, each with at most one call in flight, either in a
// closed loop (a caller starts its next call as soon as the last one completes) or in an open
// loop at a fixed rate of calls per second (calls are due at start + k/rate; a due call waits
// for a free caller, and its latency counts from when it was due, so a slow server cannot hide
// its queueing: no coordinated omission).
//
//   tb::bench::RunResult result = tb::bench::RunLoad(&driver, generator, options);
//
// Every completed call is checked by the driver; calls completing inside the measured window
// [start + warmup, start + warmup + duration) count for throughput and latency, failures count
// wherever they happen.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "bench/loadgen/driver.h"
#include "bench/loadgen/histogram.h"
#include "bench/loadgen/workload.h"

namespace tb::bench {

struct RunOptions {
  uint32_t callers = 1;                              // 1..kCallersMax.
  absl::Duration warmup = absl::Milliseconds(500);   // Checked, not measured.
  absl::Duration duration = absl::Seconds(5);        // Measured.
  double rate = 0;                                   // Calls/s for the open loop; 0: closed loop.
  absl::Duration drain_timeout = absl::Seconds(60);  // Wait this long for calls in flight.
};

inline constexpr uint32_t kCallersMax = 100000;
inline constexpr size_t kBacklogMax = 10000000;  // Open loop: due calls waiting for a caller.
inline constexpr size_t kErrorSamplesMax = 8;

struct RunResult {
  Histogram latency_ns;          // Measured calls that succeeded.
  uint64_t calls = 0;            // Measured calls that succeeded.
  uint64_t events = 0;           // Their events.
  uint64_t completed = 0;        // All calls completed (warm-up and measured).
  uint64_t failures = 0;         // All calls that failed or answered wrongly.
  uint64_t unfinished = 0;       // Still in flight after drain_timeout.
  uint64_t not_started = 0;      // Open loop: due but never started (callers all busy).
  double seconds = 0;            // Length of the measured window.
  std::map<std::string, uint64_t> error_counts;  // By status code name.
  std::vector<std::string> error_samples;        // The first few messages.
};

// Writes the call numbered `sequence` over `call` (reusing its buffers). Called from driver
// threads, for one caller at a time.
using CallGenerator = std::function<void(uint64_t sequence, Call* call)>;

// Blocks for warmup + duration (+ the drain). `generator` is called from driver threads.
RunResult RunLoad(Driver* driver, CallGenerator generator, const RunOptions& options);

}  // namespace tb::bench
