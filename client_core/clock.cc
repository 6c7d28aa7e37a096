#include "client_core/clock.h"

#include <chrono>

namespace tb {
namespace {

class SteadyClock final : public Clock {
 public:
  uint64_t NowNs() override {
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                     std::chrono::steady_clock::now().time_since_epoch())
                                     .count());
  }
};

}  // namespace

Clock* SystemClock() {
  static SteadyClock* const clock = new SteadyClock();
  return clock;
}

}  // namespace tb
