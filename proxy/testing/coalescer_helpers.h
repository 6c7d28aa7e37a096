// Helpers for the coalescer's tests: callers that record their answer, event builders, and an
// observer that counts. Accounts: client_core/testing/events.h; the clock:
// client_core/testing/fake_clock.h.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "client_core/bytes.h"
#include "client_core/multi_batch.h"
#include "client_core/outcome.h"
#include "client_core/types.h"
#include "proxy/coalescer/coalescer.h"

namespace tb::proxy::testing {

// Where a caller's single answer lands. The answer lives on in the callback, so a coalescer
// that answers after the test's Answer is gone (at destruction) writes into valid memory.
class Answer {
 public:
  struct State {
    std::optional<absl::StatusOr<SubmitResult>> result;
    int count = 0;
  };

  SubmitCallback Callback() {
    return [state = state_](absl::StatusOr<SubmitResult> value) {
      state->result = std::move(value);
      state->count++;
    };
  }
  const std::optional<absl::StatusOr<SubmitResult>>& result() const { return state_->result; }
  int count() const { return state_->count; }
  bool ok() const { return result().has_value() && result()->ok(); }
  absl::StatusCode code() const {
    return result().has_value() ? result()->status().code() : absl::StatusCode::kUnknown;
  }
  std::optional<Outcome> outcome() const {
    return result().has_value() ? GetOutcome(result()->status()) : std::nullopt;
  }

 private:
  std::shared_ptr<State> state_ = std::make_shared<State>();
};

inline std::vector<uint8_t> Transfers(uint32_t count) {
  return std::vector<uint8_t>(size_t{count} * sizeof(Transfer), 0);
}

inline std::vector<uint8_t> Ids(std::span<const uint64_t> ids) {
  std::vector<uint8_t> bytes;
  for (uint64_t id : ids) AppendStruct(&bytes, u128{id});
  return bytes;
}

inline std::vector<uint8_t> AccountQuery(uint32_t limit) {
  QueryFilter filter{};
  filter.limit = limit;
  return StructBytes(filter);
}

inline std::vector<uint8_t> ChangeEventsQuery(uint32_t limit) {
  ChangeEventsFilter filter{};
  filter.limit = limit;
  return StructBytes(filter);
}

inline std::vector<uint8_t> EncodeBatches(uint32_t element_size,
                                          const std::vector<std::vector<uint8_t>>& batches) {
  std::vector<std::span<const uint8_t>> views(batches.begin(), batches.end());
  return EncodeMultiBatch(element_size, views);
}

inline pool::ClusterReply Reply(uint64_t timestamp, std::vector<uint8_t> body) {
  return pool::ClusterReply{.op = 1, .timestamp = timestamp, .body = std::move(body)};
}

class CountingObserver : public CoalescerObserver {
 public:
  void OnBatchQueued(uint8_t, uint32_t) override { Add(&queued_); }
  void OnRefused(uint8_t, RefusalReason reason) override {
    absl::MutexLock lock(&mutex_);
    refused_.push_back(reason);
  }
  void OnMessageBuilt(const MessageStats& stats) override {
    absl::MutexLock lock(&mutex_);
    messages_.push_back(stats);
  }
  void OnCallerCompleted(uint8_t, absl::StatusCode, absl::Duration) override { Add(&completed_); }
  void OnLateResultsDropped(uint8_t, uint32_t count) override {
    absl::MutexLock lock(&mutex_);
    late_ += count;
  }

  int queued() const { return Get(queued_); }
  int completed() const { return Get(completed_); }
  int late() const { return Get(late_); }
  std::vector<RefusalReason> refused() const {
    absl::MutexLock lock(&mutex_);
    return refused_;
  }
  std::vector<MessageStats> messages() const {
    absl::MutexLock lock(&mutex_);
    return messages_;
  }

 private:
  void Add(int* counter) {
    absl::MutexLock lock(&mutex_);
    (*counter)++;
  }
  int Get(const int& counter) const {
    absl::MutexLock lock(&mutex_);
    return counter;
  }

  mutable absl::Mutex mutex_;
  int queued_ = 0;
  int completed_ = 0;
  int late_ = 0;
  std::vector<RefusalReason> refused_;
  std::vector<MessageStats> messages_;
};

}  // namespace tb::proxy::testing
