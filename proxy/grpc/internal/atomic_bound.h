// A count of units that never passes its maximum, whatever the threads do: the shared core of
// the front end's lock-free bounds (StreamRpcLimit counts open streams, CallMemoryBudget the
// bytes of calls not yet done). Taking is a compare-and-swap, not an increment undone on
// overflow, so a reader never sees more than the maximum and two racing takers cannot both
// take the last units.
//
//   internal::AtomicBound bound(max);
//   if (!bound.TryTake(units)) return Refuse();   // counted in refused()
//   ... bound.Give(units);                         // exactly what was taken
#pragma once

#include <atomic>
#include <cstdint>

#include "client_core/assert.h"

namespace tb::proxy::internal {

class AtomicBound {
 public:
  // `max` >= 1.
  explicit AtomicBound(uint64_t max) : max_(max) { TB_ASSERT(max_ >= 1); }
  AtomicBound(const AtomicBound&) = delete;
  AtomicBound& operator=(const AtomicBound&) = delete;

  // Takes `units`, or counts a refusal and returns false when they would pass max().
  bool TryTake(uint64_t units) {
    uint64_t taken = taken_.load(std::memory_order_relaxed);
    do {
      if (units > max_ - taken) {
        refused_.fetch_add(1, std::memory_order_relaxed);
        return false;
      }
    } while (!taken_.compare_exchange_weak(taken, taken + units, std::memory_order_relaxed));
    return true;
  }
  // Gives back units taken before.
  void Give(uint64_t units) {
    const uint64_t before = taken_.fetch_sub(units, std::memory_order_relaxed);
    TB_ASSERT(before >= units);
  }

  uint64_t taken() const { return taken_.load(std::memory_order_relaxed); }
  uint64_t refused() const { return refused_.load(std::memory_order_relaxed); }
  uint64_t max() const { return max_; }

 private:
  const uint64_t max_;
  std::atomic<uint64_t> taken_{0};
  std::atomic<uint64_t> refused_{0};
};

}  // namespace tb::proxy::internal
