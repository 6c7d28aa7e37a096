// Test doubles for SessionPool tests: a thread-safe MessageSource fed by the test, a recording
// PoolObserver, and an I/O thread. Waiting is on conditions under one mutex with a bounded
// timeout, never on sleeps.
#pragma once

#include <cstdint>
#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <map>
#include <optional>
#include <set>
#include <utility>
#include <thread>
#include <vector>

#include <asio.hpp>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client_core/u128.h"
#include "pool/message_source.h"
#include "pool/pool_observer.h"

namespace tb::pool::testing {

inline constexpr absl::Duration kWaitTimeout = absl::Seconds(30);

// Everything the pool reports, under one mutex that the test waits on. Every field below is
// guarded by `mutex`: access them through Lock(), whose release wakes WaitUntil(). (std::mutex
// rather than absl::Mutex so ThreadSanitizer sees the synchronisation even with Debian's
// uninstrumented Abseil.)
struct Record {
  class Locked {
   public:
    explicit Locked(Record* record) : record_(record), lock_(record->mutex) {}
    // Notifies before unlocking: a waiter that returns may destroy the Record right away.
    ~Locked() { record_->changed.notify_all(); }
    Record* operator->() const { return record_; }

   private:
    Record* record_;
    std::unique_lock<std::mutex> lock_;
  };
  Locked Lock() { return Locked(this); }

  // Waits until `predicate` (called with the mutex held) is true; false after kWaitTimeout.
  template <typename Predicate>
  bool WaitUntil(Predicate predicate) {
    std::unique_lock<std::mutex> lock(mutex);
    return changed.wait_for(lock, absl::ToChronoNanoseconds(kWaitTimeout),
                            [this, &predicate] { return predicate(*this); });
  }

  std::mutex mutex;
  std::condition_variable changed;
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
  std::vector<u128> retired;
  std::vector<u128> stuck_kept;  // OnSessionStuckKept, in order.
  std::map<u128, uint32_t> keep_warm;
  std::vector<uint32_t> views;
  uint32_t round_trips = 0;
  uint32_t resends = 0;
  std::vector<std::pair<ResubmissionReason, uint32_t>> resubmissions;  // Reason, attempts.
  std::vector<absl::Status> failures;
  std::vector<uint32_t> batch_size_limits;
  bool drained = false;  // Set by the test's Drain() callback.
};

// A FIFO of messages; each message's on_done stores its outcome in Record::results under the
// message's number.
class TestSource final : public MessageSource {
 public:
  explicit TestSource(Record* record) : record_(record) {}

  // `deadline`: the earliest deadline of the message's callers, as the coalescer sets it.
  void Push(uint32_t number, uint8_t operation, std::vector<uint8_t> body,
            absl::Time deadline = absl::InfiniteFuture()) {
    Record* record = record_;
    OutgoingMessage message{
        .operation = operation,
        .body = std::move(body),
        .enqueued_at = absl::Now(),
        .deadline = deadline,
        .on_done = [record, number](absl::StatusOr<ClusterReply> reply) {
          auto lock = record->Lock();
          if (record->results.contains(number)) {
            record->duplicate_results++;
            return;
          }
          // Messages failed before they were taken (drain, failure) were never in flight.
          if (record->taken_numbers.contains(number)) record->in_flight--;
          record->results.emplace(number, std::move(reply));
        },
    };
    auto lock = record_->Lock();
    record_->queue.emplace_back(number, std::move(message));
  }

  std::optional<OutgoingMessage> TakeMessage(uint32_t batch_size_limit) override {
    auto lock = record_->Lock();
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
    auto lock = record_->Lock();
    record_->registered.push_back(client);
  }
  void OnSessionEvicted(u128 client, EvictionReason reason) override {
    auto lock = record_->Lock();
    record_->evicted.emplace_back(client, reason);
  }
  void OnSessionReplaced(u128 old_client, u128 new_client) override {
    auto lock = record_->Lock();
    record_->replaced.emplace_back(old_client, new_client);
  }
  void OnSessionRetired(u128 client, absl::Duration) override {
    auto lock = record_->Lock();
    record_->retired.push_back(client);
  }
  void OnSessionStuckKept(u128 client, absl::Duration) override {
    auto lock = record_->Lock();
    record_->stuck_kept.push_back(client);
  }
  void OnViewChange(u128, uint32_t view) override {
    auto lock = record_->Lock();
    record_->views.push_back(view);
  }
  void OnRequestResent(u128, uint32_t) override {
    auto lock = record_->Lock();
    record_->resends++;
  }
  void OnMessageResubmitted(ResubmissionReason reason, uint32_t attempts) override {
    auto lock = record_->Lock();
    record_->resubmissions.emplace_back(reason, attempts);
  }
  void OnRoundTrip(uint8_t, absl::Duration) override {
    auto lock = record_->Lock();
    record_->round_trips++;
  }
  void OnKeepWarm(u128 client) override {
    auto lock = record_->Lock();
    record_->keep_warm[client]++;
  }
  void OnPoolFailed(const absl::Status& status) override {
    auto lock = record_->Lock();
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
    std::promise<void> done;
    asio::post(io_context_, [&] {
      function();
      done.set_value();
    });
    done.get_future().wait();
  }

 private:
  asio::io_context io_context_;
  asio::executor_work_guard<asio::io_context::executor_type> guard_;
  std::thread thread_;
};

}  // namespace tb::pool::testing
