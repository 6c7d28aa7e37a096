// A count of units that never passes its maximum, whatever the threads do: the shared core of
// the front end's lock-free bounds (StreamRpcLimit counts open streams, CallMemoryBudget the
// bytes of calls not yet done). Taking is a compare-and-swap, not an increment undone on
// overflow, so a reader never sees more than the maximum and two racing takers cannot both
// take the last units.
//
//   internal::AtomicBound bound(max);
//   internal::BoundUnits held = bound.TryHold(units);
//   if (!held.held()) return Refuse();   // counted in refused()
//   ... held gives its units back when released, moved from or destroyed
#pragma once

#include <atomic>
#include <cstdint>
#include <utility>

#include "client_core/assert.h"

namespace tb::proxy::internal {

class AtomicBound;

// Units taken from an AtomicBound, given back exactly once: by Release(), by destruction, or by
// the BoundUnits they were moved into. Move-only; an empty (default-constructed, moved-from,
// released or refused) one holds nothing.
class BoundUnits {
 public:
  BoundUnits() = default;
  BoundUnits(BoundUnits&& other) noexcept
      : bound_(std::exchange(other.bound_, nullptr)), units_(std::exchange(other.units_, 0)) {}
  BoundUnits& operator=(BoundUnits&& other) noexcept {
    if (this == &other) return *this;
    Release();
    bound_ = std::exchange(other.bound_, nullptr);
    units_ = std::exchange(other.units_, 0);
    return *this;
  }
  BoundUnits(const BoundUnits&) = delete;
  BoundUnits& operator=(const BoundUnits&) = delete;
  ~BoundUnits() { Release(); }

  // Gives the units back. Does nothing when empty.
  inline void Release();
  bool held() const { return bound_ != nullptr; }
  uint64_t units() const { return units_; }

 private:
  friend class AtomicBound;
  BoundUnits(AtomicBound* bound, uint64_t units) : bound_(bound), units_(units) {}

  AtomicBound* bound_ = nullptr;
  uint64_t units_ = 0;
};

class AtomicBound {
 public:
  // `max` >= 1.
  explicit AtomicBound(uint64_t max) : max_(max) { TB_ASSERT(max_ >= 1); }
  AtomicBound(const AtomicBound&) = delete;
  AtomicBound& operator=(const AtomicBound&) = delete;

  // `units` (>= 1) held until the returned BoundUnits gives them back, or an empty BoundUnits
  // (a refusal, counted) when they would pass max(). The bound must outlive what it hands out.
  BoundUnits TryHold(uint64_t units) {
    TB_ASSERT(units >= 1);
    return TryTake(units) ? BoundUnits(this, units) : BoundUnits();
  }

  uint64_t taken() const { return taken_.load(std::memory_order_relaxed); }
  uint64_t refused() const { return refused_.load(std::memory_order_relaxed); }
  uint64_t max() const { return max_; }

 private:
  friend class BoundUnits;

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

  const uint64_t max_;
  std::atomic<uint64_t> taken_{0};
  std::atomic<uint64_t> refused_{0};
};

void BoundUnits::Release() {
  if (bound_ == nullptr) return;
  std::exchange(bound_, nullptr)->Give(std::exchange(units_, 0));
}

}  // namespace tb::proxy::internal
