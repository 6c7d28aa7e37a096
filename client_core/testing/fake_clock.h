// A Clock that moves only when the test says so. Thread-safe: the code under test may read it
// from its own threads while the test advances it.
//
//   FakeClock clock;
//   Session session(options, &transport, &clock, &observer);
//   clock.Advance(absl::Milliseconds(10));
#pragma once

#include <atomic>
#include <cstdint>

#include "absl/time/time.h"
#include "client_core/clock.h"

namespace tb::client_core::testing {

class FakeClock final : public Clock {
 public:
  // 1 s after the epoch: far from 0, so that a time taken before the start never wraps.
  explicit FakeClock(uint64_t now_ns = 1'000'000'000) : now_ns_(now_ns) {}

  uint64_t NowNs() override { return now_ns_.load(); }
  // NowNs() as an absl::Time (nanoseconds since the Unix epoch), for deadlines.
  absl::Time Now() const { return absl::FromUnixNanos(static_cast<int64_t>(now_ns_.load())); }

  void Set(uint64_t now_ns) { now_ns_.store(now_ns); }
  void AdvanceNs(uint64_t ns) { now_ns_.fetch_add(ns); }
  void Advance(absl::Duration duration) {
    AdvanceNs(static_cast<uint64_t>(absl::ToInt64Nanoseconds(duration)));
  }

 private:
  std::atomic<uint64_t> now_ns_;
};

}  // namespace tb::client_core::testing
