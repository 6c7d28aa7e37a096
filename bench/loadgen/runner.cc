#include "bench/loadgen/runner.h"

#include <atomic>
#include <chrono>
#include <deque>
#include <optional>
#include <thread>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "client_core/assert.h"

namespace tb::bench {
namespace {

uint64_t NowNs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

class Loop {
 public:
  Loop(Driver* driver, CallGenerator generator, const RunOptions& options)
      : driver_(driver),
        generator_(std::move(generator)),
        options_(options),
        callers_(options.callers) {}

  RunResult Run() {
    const uint64_t start = NowNs();
    measure_from_ = start + static_cast<uint64_t>(absl::ToInt64Nanoseconds(options_.warmup));
    stop_at_ = measure_from_ + static_cast<uint64_t>(absl::ToInt64Nanoseconds(options_.duration));
    if (options_.rate <= 0) {
      {
        absl::MutexLock lock(&mutex_);
        outstanding_ = options_.callers;
      }
      for (uint32_t caller = 0; caller < options_.callers; caller++) Launch(caller, NowNs());
    } else {
      Pace(start);
    }
    WaitForDrain();
    absl::MutexLock lock(&mutex_);
    result_.seconds = static_cast<double>(stop_at_ - measure_from_) / 1e9;
    result_.unfinished = outstanding_;
    return std::move(result_);
  }

 private:
  // Only one call of a caller is in flight, so its CallerState is touched by one thread at a time
  // (the hand-over goes through the driver, which synchronises).
  void Launch(uint32_t caller, uint64_t due_ns) {
    CallerState& state = callers_[caller];
    // The caller's previous call is reused once the driver has let go of it.
    if (state.call == nullptr || state.call.use_count() > 1) state.call = std::make_shared<Call>();
    generator_(sequence_.fetch_add(1, std::memory_order_relaxed), state.call.get());
    state.due_ns = due_ns;
    state.events = state.call->event_count;
    // Small enough to live inside the CallDone without an allocation.
    driver_->Start(caller, state.call, [this, caller](absl::Status status) {
      OnDone(caller, status);
    });
  }

  void OnDone(uint32_t caller, const absl::Status& status) {
    const uint64_t now = NowNs();
    const uint64_t due_ns = callers_[caller].due_ns;
    const uint32_t events = callers_[caller].events;
    std::optional<uint64_t> next_due;
    {
      absl::MutexLock lock(&mutex_);
      result_.completed++;
      const bool stopping = now >= stop_at_ || pacing_done_;
      if (!status.ok()) {
        result_.failures++;
        result_.error_counts[absl::StatusCodeToString(status.code())]++;
        if (result_.error_samples.size() < kErrorSamplesMax) {
          result_.error_samples.push_back(status.ToString());
        }
      } else if (now >= measure_from_ && now < stop_at_ && due_ns >= measure_from_) {
        result_.calls++;
        result_.events += events;
        result_.latency_ns.Record(now - due_ns);
      }
      if (!stopping) {
        if (options_.rate <= 0) {
          next_due = now;
        } else if (!backlog_.empty()) {
          next_due = backlog_.front();
          backlog_.pop_front();
        } else {
          free_callers_.push_back(caller);
        }
      }
      if (!next_due.has_value()) {
        if (options_.rate <= 0 || stopping) {
          TB_ASSERT(outstanding_ > 0);
          outstanding_--;
        }
      }
    }
    if (next_due.has_value()) Launch(caller, *next_due);
  }

  // Open loop: calls due at start + k/rate go to a free caller, or wait in the backlog.
  void Pace(uint64_t start) {
    {
      absl::MutexLock lock(&mutex_);
      for (uint32_t caller = 0; caller < options_.callers; caller++) {
        free_callers_.push_back(options_.callers - 1 - caller);
      }
      // In the open loop a caller counts as outstanding from the start until it is idle at the
      // end, so the drain waits for every caller exactly once.
      outstanding_ = options_.callers;
    }
    const double interval_ns = 1e9 / options_.rate;
    for (uint64_t k = 0;; k++) {
      const uint64_t due = start + static_cast<uint64_t>(static_cast<double>(k) * interval_ns);
      if (due >= stop_at_) break;
      const uint64_t now = NowNs();
      if (due > now) std::this_thread::sleep_for(std::chrono::nanoseconds(due - now));
      std::optional<uint32_t> caller;
      {
        absl::MutexLock lock(&mutex_);
        if (!free_callers_.empty()) {
          caller = free_callers_.back();
          free_callers_.pop_back();
        } else if (backlog_.size() < kBacklogMax) {
          backlog_.push_back(due);
        } else {
          result_.not_started++;
        }
      }
      if (caller.has_value()) Launch(*caller, due);
    }
    const uint64_t now = NowNs();
    if (stop_at_ > now) std::this_thread::sleep_for(std::chrono::nanoseconds(stop_at_ - now));
    absl::MutexLock lock(&mutex_);
    pacing_done_ = true;
    result_.not_started += backlog_.size();
    backlog_.clear();
    // Idle callers are finished; busy ones finish in OnDone (now >= stop_at_).
    TB_ASSERT(outstanding_ >= free_callers_.size());
    outstanding_ -= free_callers_.size();
    free_callers_.clear();
  }

  void WaitForDrain() {
    const uint64_t now = NowNs();
    if (stop_at_ > now) std::this_thread::sleep_for(std::chrono::nanoseconds(stop_at_ - now));
    absl::MutexLock lock(&mutex_);
    auto drained = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) { return outstanding_ == 0; };
    mutex_.AwaitWithTimeout(absl::Condition(&drained), options_.drain_timeout);
  }

  struct CallerState {
    std::shared_ptr<Call> call;
    uint64_t due_ns = 0;
    uint32_t events = 0;
  };

  Driver* const driver_;
  const CallGenerator generator_;
  const RunOptions options_;
  std::vector<CallerState> callers_;
  uint64_t measure_from_ = 0;
  uint64_t stop_at_ = 0;
  std::atomic<uint64_t> sequence_{0};

  absl::Mutex mutex_;
  RunResult result_ ABSL_GUARDED_BY(mutex_);
  uint64_t outstanding_ ABSL_GUARDED_BY(mutex_) = 0;
  bool pacing_done_ ABSL_GUARDED_BY(mutex_) = false;
  std::deque<uint64_t> backlog_ ABSL_GUARDED_BY(mutex_);
  std::vector<uint32_t> free_callers_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace

absl::Status RunBlocking(Driver* driver, std::shared_ptr<const Call> call) {
  absl::Notification done;
  absl::Status result;
  driver->Start(0, std::move(call), [&](absl::Status status) {
    result = std::move(status);
    done.Notify();
  });
  done.WaitForNotification();
  return result;
}

RunResult RunLoad(Driver* driver, CallGenerator generator, const RunOptions& options) {
  TB_ASSERT(options.callers >= 1 && options.callers <= kCallersMax);
  // The loop lives on the heap and is leaked if calls are still in flight after the drain
  // timeout: their callbacks may still run and must find it alive.
  auto* loop = new Loop(driver, std::move(generator), options);
  RunResult result = loop->Run();
  if (result.unfinished == 0) delete loop;
  return result;
}

}  // namespace tb::bench
