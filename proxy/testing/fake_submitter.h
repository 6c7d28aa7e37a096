// A Submitter for tests of the front ends: records every call, and either answers at once with
// a programmable function or holds the callbacks until the test releases them.
//
//   FakeSubmitter submitter;
//   submitter.set_answer([](const SubmitRequest& r) { return SubmitResult{...}; });
//   ... or submitter.set_hold(true); submitter.WaitForPending(2); submitter.ReleaseOldest(result);
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "client_core/assert.h"
#include "proxy/submitter.h"

namespace tb::proxy::testing {

class FakeSubmitter final : public Submitter {
 public:
  struct Call {
    SubmitRequest request;
    SubmitOptions options;
  };
  using Answer = std::function<absl::StatusOr<SubmitResult>(const SubmitRequest&)>;

  void Submit(SubmitRequest request, SubmitOptions options, SubmitCallback callback) override {
    Answer answer;
    {
      absl::MutexLock lock(&mutex_);
      calls_.push_back({request, options});
      if (hold_) {
        pending_.push_back({std::move(request), std::move(callback)});
        pending_max_ = std::max(pending_max_, pending_.size());
        return;
      }
      answer = answer_;
    }
    absl::StatusOr<SubmitResult> result =
        answer ? answer(request) : absl::StatusOr<SubmitResult>(SubmitResult{});
    std::move(callback)(std::move(result));
  }

  // Calls the front end answered itself, before Submit.
  struct Refusal {
    uint8_t operation = 0;
    absl::StatusCode code = absl::StatusCode::kOk;
  };
  void OnRefusedBeforeSubmit(uint8_t operation, absl::StatusCode code) override {
    absl::MutexLock lock(&mutex_);
    refusals_.push_back({operation, code});
  }
  std::vector<Refusal> refusals() const {
    absl::MutexLock lock(&mutex_);
    return refusals_;
  }

  void set_answer(Answer answer) {
    absl::MutexLock lock(&mutex_);
    answer_ = std::move(answer);
  }
  void set_hold(bool hold) {
    absl::MutexLock lock(&mutex_);
    hold_ = hold;
  }

  std::vector<Call> calls() const {
    absl::MutexLock lock(&mutex_);
    return calls_;
  }
  size_t pending_max() const {
    absl::MutexLock lock(&mutex_);
    return pending_max_;
  }

  // Blocks until at least `count` callbacks are held.
  void WaitForPending(size_t count) const {
    absl::MutexLock lock(&mutex_);
    auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) { return pending_.size() >= count; };
    mutex_.Await(absl::Condition(&enough));
  }

  // Answers the oldest held call with `answer` applied to its request.
  void ReleaseOldest(const Answer& answer) { Release(/*newest=*/false, answer); }
  // Answers the newest held call (to complete calls out of order).
  void ReleaseNewest(const Answer& answer) { Release(/*newest=*/true, answer); }

 private:
  struct Pending {
    SubmitRequest request;
    SubmitCallback callback;
  };

  void Release(bool newest, const Answer& answer) {
    Pending pending;
    {
      absl::MutexLock lock(&mutex_);
      TB_ASSERT(!pending_.empty());
      if (newest) {
        pending = std::move(pending_.back());
        pending_.pop_back();
      } else {
        pending = std::move(pending_.front());
        pending_.pop_front();
      }
    }
    // Outside the lock: the callback may submit again.
    std::move(pending.callback)(answer(pending.request));
  }

  mutable absl::Mutex mutex_;
  std::vector<Call> calls_ ABSL_GUARDED_BY(mutex_);
  std::vector<Refusal> refusals_ ABSL_GUARDED_BY(mutex_);
  std::deque<Pending> pending_ ABSL_GUARDED_BY(mutex_);
  size_t pending_max_ ABSL_GUARDED_BY(mutex_) = 0;
  Answer answer_ ABSL_GUARDED_BY(mutex_);
  bool hold_ ABSL_GUARDED_BY(mutex_) = false;
};

}  // namespace tb::proxy::testing
