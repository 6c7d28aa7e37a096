// Test doubles for SessionPool tests: a thread-safe MessageSource fed by the test, a recording
// PoolObserver, and an I/O thread. Waiting is on conditions under one mutex with a bounded
// timeout, never on sleeps.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <utility>
#include <thread>
#include <vector>

#include <asio.hpp>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "client_core/u128.h"
#include "pool/message_source.h"
#include "pool/pool_observer.h"

namespace tb::pool::testing {

inline constexpr absl::Duration kWaitTimeout = absl::Seconds(30);

// Everything the pool reports, under one mutex that the test waits on. Every field below `mutex`
// is guarded by it (not annotated, so the tests' predicate lambdas stay short).
struct Record {
  absl::Mutex mutex;
  // MessageSource side.
  std::deque<std::pair<uint32_t, OutgoingMessage>> queue;
  std::set<uint32_t> taken_numbers;
  uint32_t taken = 0;
  uint32_t in_flight = 0;       // Taken, not yet done.
  uint32_t in_flight_max = 0;
  uint32_t limit_seen = 0;      // batch_size_limit of the last take.
  std::map<uint32_t, absl::StatusOr<ClusterReply>> results;
  uint32_t duplicate_results = 0;
  // PoolObserver side.
  std::vector<u128> registered;
  std::vector<std::pair<u128, EvictionReason>> evicted;
  std::vector<std::pair<u128, u128>> replaced;
  std::map<u128, uint32_t> keep_warm;
  std::vector<uint32_t> views;
  uint32_t round_trips = 0;
  uint32_t resends = 0;
  std::vector<absl::Status> failures;
  std::vector<uint32_t> batch_size_limits;
  bool drained = false;  // Set by the test's Drain() callback.

  // Waits until `predicate` (called with the mutex held) is true; false after kWaitTimeout.
  template <typename Predicate>
  bool WaitUntil(Predicate predicate) {
    absl::MutexLock lock(&mutex);
    auto condition = [this, &predicate]() { return predicate(*this); };
    return mutex.AwaitWithTimeout(absl::Condition(&condition), kWaitTimeout);
  }
};

// A FIFO of messages; each message's on_done stores its outcome in Record::results under the
// message's number.
class TestSource final : public MessageSource {
 public:
  explicit TestSource(Record* record) : record_(record) {}

  void Push(uint32_t number, uint8_t operation, std::vector<uint8_t> body) {
    Record* record = record_;
    OutgoingMessage message{
        .operation = operation,
        .body = std::move(body),
        .enqueued_at = absl::Now(),
        .on_done = [record, number](absl::StatusOr<ClusterReply> reply) {
          absl::MutexLock lock(&record->mutex);
          if (record->results.contains(number)) {
            record->duplicate_results++;
            return;
          }
          // Messages failed before they were taken (drain, failure) were never in flight.
          if (record->taken_numbers.contains(number)) record->in_flight--;
          record->results.emplace(number, std::move(reply));
        },
    };
    absl::MutexLock lock(&record_->mutex);
    record_->queue.emplace_back(number, std::move(message));
  }

  std::optional<OutgoingMessage> TakeMessage(uint32_t batch_size_limit) override {
    absl::MutexLock lock(&record_->mutex);
    record_->limit_seen = batch_size_limit;
    if (record_->queue.empty() || record_->queue.front().second.body.size() > batch_size_limit) {
      return std::nullopt;
    }
    const uint32_t number = record_->queue.front().first;
    OutgoingMessage message = std::move(record_->queue.front().second);
    record_->queue.pop_front();
    record_->taken_numbers.insert(number);
    record_->taken++;
    record_->in_flight++;
    record_->in_flight_max = std::max(record_->in_flight_max, record_->in_flight);
    return message;
  }

 private:
  Record* record_;
};

class RecordingObserver final : public PoolObserver {
 public:
  explicit RecordingObserver(Record* record) : record_(record) {}
  void OnSessionRegistered(u128 client, uint64_t, uint32_t) override {
    absl::MutexLock lock(&record_->mutex);
    record_->registered.push_back(client);
  }
  void OnSessionEvicted(u128 client, EvictionReason reason) override {
    absl::MutexLock lock(&record_->mutex);
    record_->evicted.emplace_back(client, reason);
  }
  void OnSessionReplaced(u128 old_client, u128 new_client) override {
    absl::MutexLock lock(&record_->mutex);
    record_->replaced.emplace_back(old_client, new_client);
  }
  void OnViewChange(u128, uint32_t view) override {
    absl::MutexLock lock(&record_->mutex);
    record_->views.push_back(view);
  }
  void OnRequestResent(u128, uint32_t) override {
    absl::MutexLock lock(&record_->mutex);
    record_->resends++;
  }
  void OnRoundTrip(uint8_t, absl::Duration) override {
    absl::MutexLock lock(&record_->mutex);
    record_->round_trips++;
  }
  void OnKeepWarm(u128 client) override {
    absl::MutexLock lock(&record_->mutex);
    record_->keep_warm[client]++;
  }
  void OnPoolFailed(const absl::Status& status) override {
    absl::MutexLock lock(&record_->mutex);
    record_->failures.push_back(status);
  }

 private:
  Record* record_;
};

// An io_context run by one thread until destruction.
class IoThread {
 public:
  IoThread() : guard_(asio::make_work_guard(io_context_)), thread_([this] { io_context_.run(); }) {}
  ~IoThread() { Stop(); }
  asio::io_context& io_context() { return io_context_; }
  // Stops the loop and joins the thread; handlers still queued never run.
  void Stop() {
    if (!thread_.joinable()) return;
    guard_.reset();
    io_context_.stop();
    thread_.join();
  }
  // Runs `function` on the I/O thread and waits for it.
  template <typename Function>
  void RunAndWait(Function function) {
    absl::Mutex mutex;
    bool done = false;
    asio::post(io_context_, [&] {
      function();
      absl::MutexLock lock(&mutex);
      done = true;
    });
    absl::MutexLock lock(&mutex);
    mutex.Await(absl::Condition(&done));
  }

 private:
  asio::io_context io_context_;
  asio::executor_work_guard<asio::io_context::executor_type> guard_;
  std::thread thread_;
};

}  // namespace tb::pool::testing
