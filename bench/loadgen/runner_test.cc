#include "bench/loadgen/runner.h"

#include <cstring>
#include <deque>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"

namespace tb::bench {
namespace {

uint64_t SequenceOf(const Call& call) {
  uint64_t sequence = 0;
  EXPECT_EQ(call.events.size(), sizeof(sequence));
  std::memcpy(&sequence, call.events.data(), sizeof(sequence));
  return sequence;
}

void WriteSequence(uint64_t sequence, Call* call) {
  call->event_count = 1;
  call->events.resize(sizeof(sequence));
  std::memcpy(call->events.data(), &sequence, sizeof(sequence));
}

// Completes calls on a thread of its own, in order. It keeps every caller's previous call until
// that caller's next one starts (as a driver that lets go late would), and checks that nobody
// rewrote a call while the driver still held it. Every `fail_every`-th call fails.
class FakeDriver final : public Driver {
 public:
  explicit FakeDriver(uint32_t callers, uint64_t fail_every)
      : previous_(callers), fail_every_(fail_every), thread_([this] { Serve(); }) {}

  ~FakeDriver() override {
    {
      absl::MutexLock lock(&mutex_);
      stopping_ = true;
    }
    thread_.join();
  }

  void Start(uint32_t caller, std::shared_ptr<const Call> call, CallDone done) override {
    absl::MutexLock lock(&mutex_);
    Held& previous = previous_[caller];
    if (previous.call != nullptr && SequenceOf(*previous.call) != previous.sequence) {
      rewritten_++;
    }
    if (previous.call == call) same_object_while_held_++;
    queue_.push_back({caller, SequenceOf(*call), call, std::move(done)});
  }

  uint64_t rewritten() {
    absl::MutexLock lock(&mutex_);
    return rewritten_;
  }
  uint64_t same_object_while_held() {
    absl::MutexLock lock(&mutex_);
    return same_object_while_held_;
  }

 private:
  struct Held {
    std::shared_ptr<const Call> call;
    uint64_t sequence = 0;
  };
  struct Pending {
    uint32_t caller;
    uint64_t sequence;
    std::shared_ptr<const Call> call;
    CallDone done;
  };

  void Serve() {
    uint64_t served = 0;
    for (;;) {
      Pending pending;
      {
        absl::MutexLock lock(&mutex_);
        auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) {
          return stopping_ || !queue_.empty();
        };
        mutex_.Await(absl::Condition(&ready));
        if (queue_.empty()) return;
        pending = std::move(queue_.front());
        queue_.pop_front();
        if (SequenceOf(*pending.call) != pending.sequence) rewritten_++;
        previous_[pending.caller] = {pending.call, pending.sequence};
      }
      served++;
      absl::Status status = fail_every_ != 0 && served % fail_every_ == 0
                                ? absl::DataLossError("wrong answer")
                                : absl::OkStatus();
      std::move(pending.done)(std::move(status));
    }
  }

  absl::Mutex mutex_;
  std::vector<Held> previous_ ABSL_GUARDED_BY(mutex_);
  std::deque<Pending> queue_ ABSL_GUARDED_BY(mutex_);
  uint64_t rewritten_ ABSL_GUARDED_BY(mutex_) = 0;
  uint64_t same_object_while_held_ ABSL_GUARDED_BY(mutex_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mutex_) = false;
  const uint64_t fail_every_;
  std::thread thread_;
};

TEST(RunnerTest, ReusedCallsAreNeverRewrittenWhileTheDriverHoldsThem) {
  constexpr uint32_t kCallers = 8;
  FakeDriver driver(kCallers, /*fail_every=*/0);
  RunResult result = RunLoad(&driver, WriteSequence,
                             {.callers = kCallers,
                              .warmup = absl::ZeroDuration(),
                              .duration = absl::Milliseconds(50)});
  EXPECT_EQ(result.failures, 0u);
  EXPECT_EQ(result.unfinished, 0u);
  EXPECT_GE(result.completed, kCallers);  // Every caller's first call, at least.
  EXPECT_EQ(driver.rewritten(), 0u);
  EXPECT_EQ(driver.same_object_while_held(), 0u);
}

TEST(RunnerTest, EveryFailedCallIsCountedWithItsCode) {
  constexpr uint32_t kCallers = 4;
  FakeDriver driver(kCallers, /*fail_every=*/3);
  RunResult result = RunLoad(&driver, WriteSequence,
                             {.callers = kCallers,
                              .warmup = absl::ZeroDuration(),
                              .duration = absl::Milliseconds(50)});
  EXPECT_EQ(result.unfinished, 0u);
  EXPECT_EQ(result.failures, result.completed / 3);
  EXPECT_EQ(result.error_counts["DATA_LOSS"], result.failures);
  EXPECT_LE(result.error_samples.size(), kErrorSamplesMax);
  EXPECT_LE(result.calls, result.completed - result.failures);
}

}  // namespace
}  // namespace tb::bench
