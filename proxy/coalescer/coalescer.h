// The coalescer: turns many applications' calls into full multi-batch messages for the session
// pool, and gives each caller exactly its own results.
//
//   tb::proxy::Coalescer coalescer(std::move(options), [&pool] { pool.Wake(); });
//   coalescer.Submit({.operation = 146, .events = bytes}, {}, std::move(callback));  // front end
//   std::optional<tb::pool::OutgoingMessage> message = coalescer.TakeMessage(limit);  // pool
//
// Dispatch policy: pull-based group commit. A session that has nothing in flight asks for the
// next message; Submit only queues and wakes the pool. At low load an idle session takes a call
// the moment it arrives, so coalescing adds no latency. While every session is busy, calls
// accumulate in per-operation queues, and the next session to become idle takes one message
// filled up to every limit the replica checks. The batch size therefore follows the load on its
// own, with no timer.
//
// Message rules (PROTOCOL.md §13, §14): one call is one batch, never merged with another call's
// events; only same-operation multi-batch operations share a message; 137 always travels alone;
// every batch is validated on Submit, and again against the limit of the session that takes it.
// Across operations, the operation whose oldest sendable call is oldest goes first.
//
// Threads: Submit, ExpireDeadlines, Close, FailQueued and SetBatchSizeLimit may be called from
// any thread; TakeMessage and the messages' on_done from the pool's thread. Caller callbacks and
// the wake callback never run while the internal lock is held. The coalescer must outlive every
// OutgoingMessage it returned (their on_done refers to it).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <optional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "client_core/operation.h"
#include "pool/message_source.h"
#include "proxy/coalescer/admission.h"
#include "proxy/coalescer/coalescer_options.h"
#include "proxy/coalescer/message_packer.h"
#include "proxy/coalescer/ordering_keys.h"
#include "proxy/coalescer/pending_call.h"
#include "proxy/coalescer/result_demux.h"
#include "proxy/submitter.h"

namespace tb::proxy {

class Coalescer final : public Submitter, public pool::MessageSource {
 public:
  using WakeCallback = absl::AnyInvocable<void()>;

  // `options` must pass ValidateCoalescerOptions (asserted). `wake` may be null (set it later
  // with SetWake); it runs after every queued call and whenever held-back work becomes sendable.
  explicit Coalescer(CoalescerOptions options, WakeCallback wake = nullptr);
  // Answers every caller still known (kUnavailable): queued ones not_applied, in-flight ones
  // unknown. The pool must already be gone: no on_done of ours may run afterwards.
  ~Coalescer() override;

  Coalescer(const Coalescer&) = delete;
  Coalescer& operator=(const Coalescer&) = delete;

  void SetWake(WakeCallback wake);
  // The batch_size_limit new calls are validated against (the pool sets it when a session
  // registers). Values outside [kBatchSizeLimitMin, kBatchSizeLimitMax] are ignored and
  // return false.
  bool SetBatchSizeLimit(uint32_t batch_size_limit);
  uint32_t batch_size_limit() const;

  // Submitter.
  void Submit(SubmitRequest request, SubmitOptions options, SubmitCallback callback) override;

  // MessageSource. Expires deadlines first (as ExpireDeadlines(clock())). Returns nullopt for
  // a limit outside [kBatchSizeLimitMin, kBatchSizeLimitMax].
  std::optional<pool::OutgoingMessage> TakeMessage(uint32_t batch_size_limit) override;

  // Answers callers whose deadline is at or before `now`: queued ones leave the queue
  // (kDeadlineExceeded, not_applied); in-flight ones are told kDeadlineExceeded (unknown) and
  // their results, when they come, are dropped and counted. The owner calls this periodically.
  void ExpireDeadlines(absl::Time now);

  // Stops intake: later Submits get kUnavailable. Queued calls still go out (drain).
  void Close();
  // Answers every queued call kUnavailable (not_applied). In-flight calls finish normally.
  void FailQueued();

  struct Counts {
    uint32_t queued_calls = 0;
    uint32_t in_flight_calls = 0;
    uint32_t in_flight_messages = 0;
    uint64_t queued_events = 0;
    uint64_t queued_bytes = 0;
  };
  Counts counts() const;
  // True once closed and nothing is queued or in flight.
  bool drained() const;
  // Waits until drained() or `deadline`; returns drained().
  bool AwaitDrained(absl::Time deadline) const;

 private:
  struct InFlightMessage {
    const OperationInfo* info = nullptr;
    std::vector<uint64_t> call_ids;  // In batch order.
    std::vector<SentBatch> batches;
  };
  // The calls chosen for one message, in batch order.
  struct MessagePlan {
    const OperationInfo* info = nullptr;
    std::vector<uint64_t> call_ids;
    uint64_t event_count = 0;
    uint64_t body_size = 0;
    uint32_t failed_count = 0;  // Calls failed alone because they exceed the session's limit.
    absl::Time oldest_submitted_at = absl::InfiniteFuture();
  };
  using Completions = std::vector<internal::Completion>;
  static constexpr size_t kQueueCount =
      kStateMachineOperationMax - kStateMachineOperationMin + 1;

  absl::Time Now() const;
  void Refuse(uint8_t operation, RefusalReason reason, absl::Status status,
              SubmitCallback callback);
  void Finish(Completions completions);
  void RunWake();

  // Queues the call, or returns why it is refused: kUnavailable once closed, or an admission
  // refusal (AdmissionRefusal names the bound). A refused call is left untouched.
  absl::Status EnqueueLocked(internal::PendingCall* call)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  std::optional<uint64_t> FirstSendableLocked(const std::deque<uint64_t>& queue) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  const OperationInfo* ChooseOperationLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  MessagePlan PlanMessageLocked(const OperationInfo& info, uint32_t batch_size_limit,
                                Completions* completions) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  pool::OutgoingMessage CommitLocked(MessagePlan plan, uint32_t batch_size_limit,
                                     absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  void OnMessageDone(uint64_t message_id, absl::StatusOr<pool::ClusterReply> reply);
  void ExpireLocked(absl::Time now, Completions* completions)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Removes queued calls from their queues and answers them with `status`.
  void FailQueuedCallsLocked(const absl::flat_hash_set<uint64_t>& call_ids,
                             const absl::Status& status, Completions* completions)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Forgets a call entirely (queue bounds, caller bound, ordering key, deadline).
  internal::PendingCall ForgetLocked(uint64_t call_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Removes the planned calls from their operation's queue.
  void DequeueLocked(const MessagePlan& plan) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  bool HasQueuedLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  bool DrainedLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);

  const CoalescerOptions options_;
  CoalescerObserver no_observer_;
  CoalescerObserver* const observer_;

  absl::Mutex wake_mutex_;
  WakeCallback wake_ ABSL_GUARDED_BY(wake_mutex_);

  mutable absl::Mutex mutex_;
  // Read on every Submit; atomic so that read takes no lock of its own.
  std::atomic<uint32_t> batch_size_limit_;
  bool closed_ ABSL_GUARDED_BY(mutex_) = false;
  uint64_t call_id_next_ ABSL_GUARDED_BY(mutex_) = 1;
  uint64_t message_id_next_ ABSL_GUARDED_BY(mutex_) = 1;
  Admission admission_ ABSL_GUARDED_BY(mutex_);
  OrderingKeys ordering_keys_ ABSL_GUARDED_BY(mutex_);
  // Stored in place (no node per call); references into it are only held while nothing is
  // added.
  absl::flat_hash_map<uint64_t, internal::PendingCall> calls_ ABSL_GUARDED_BY(mutex_);
  // Queued call ids per operation (index operation - 128), in submission order.
  std::array<std::deque<uint64_t>, kQueueCount> queues_ ABSL_GUARDED_BY(mutex_);
  uint32_t queued_call_count_ ABSL_GUARDED_BY(mutex_) = 0;
  // Calls with a finite deadline that have not been told about it yet.
  absl::btree_set<std::pair<absl::Time, uint64_t>> deadlines_ ABSL_GUARDED_BY(mutex_);
  absl::flat_hash_map<uint64_t, InFlightMessage> in_flight_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace tb::proxy
