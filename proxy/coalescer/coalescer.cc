// Intake, deadlines and shutdown of the coalescer. Building messages and splitting their replies
// is in coalescer_message.cc.
#include "proxy/coalescer/coalescer.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "client_core/assert.h"
#include "client_core/constants.h"
#include "client_core/outcome.h"
#include "client_core/request_validation.h"

namespace tb::proxy {

using internal::Completion;
using internal::PendingCall;

Coalescer::Coalescer(CoalescerOptions options, WakeCallback wake)
    : options_(std::move(options)),
      observer_(options_.observer != nullptr ? options_.observer : &no_observer_),
      wake_(std::move(wake)),
      batch_size_limit_(kBatchSizeLimitMax),
      admission_(AdmissionLimits{.queued_events_max = options_.queued_events_max,
                                 .queued_bytes_max = options_.queued_bytes_max,
                                 .callers_max = options_.callers_max}) {
  TB_ASSERT(ValidateCoalescerOptions(options_).ok());
}

Coalescer::~Coalescer() {
  Completions completions;
  {
    absl::MutexLock lock(&mutex_);
    closed_ = true;
    std::vector<uint64_t> ids;
    ids.reserve(calls_.size());
    for (const auto& [id, call] : calls_) ids.push_back(id);
    for (uint64_t id : ids) {
      PendingCall call = ForgetLocked(id);
      if (!call.callback) continue;
      const Outcome outcome =
          call.state == PendingCall::State::kQueued ? Outcome::kNotApplied : Outcome::kUnknown;
      completions.push_back(
          {std::move(call.callback),
           WithOutcome(absl::UnavailableError("tbproxy is shutting down"), outcome),
           static_cast<uint8_t>(call.info->operation), call.submitted_at});
    }
    in_flight_.clear();
  }
  Finish(std::move(completions));
}

absl::Time Coalescer::Now() const {
  if (options_.clock == nullptr) return absl::Now();
  return absl::FromUnixNanos(static_cast<int64_t>(options_.clock->NowNs()));
}

void Coalescer::SetWake(WakeCallback wake) {
  absl::MutexLock lock(&wake_mutex_);
  wake_ = std::move(wake);
}

void Coalescer::RunWake() {
  absl::MutexLock lock(&wake_mutex_);
  if (wake_) wake_();
}

bool Coalescer::SetBatchSizeLimit(uint32_t batch_size_limit) {
  if (batch_size_limit < kBatchSizeLimitMin || batch_size_limit > kBatchSizeLimitMax) {
    return false;
  }
  batch_size_limit_.store(batch_size_limit, std::memory_order_relaxed);
  return true;
}

uint32_t Coalescer::batch_size_limit() const {
  return batch_size_limit_.load(std::memory_order_relaxed);
}

void Coalescer::Refuse(uint8_t operation, RefusalReason reason, absl::Status status,
                       SubmitCallback callback) {
  observer_->OnRefused(operation, reason);
  std::move(callback)(WithOutcome(std::move(status), Outcome::kNotApplied));
}

void Coalescer::Submit(SubmitRequest request, SubmitOptions options, SubmitCallback callback) {
  TB_ASSERT(callback != nullptr);
  const uint8_t operation = request.operation;
  if (!IsForwardableOperation(operation)) {
    return Refuse(operation, RefusalReason::kInvalidInput,
                  absl::InvalidArgumentError(absl::StrCat("operation ", operation,
                                                          " is not accepted")),
                  std::move(callback));
  }
  const OperationInfo& info = *FindOperation(operation);
  // Validated against the limit of the moment; TakeMessage checks again against the limit of
  // the session that carries it.
  absl::Status valid = ValidateBatch(info, request.events, batch_size_limit());
  if (!valid.ok()) {
    return Refuse(operation, RefusalReason::kInvalidInput, std::move(valid), std::move(callback));
  }
  const absl::Time now = Now();
  if (options.deadline <= now) {
    observer_->OnCallerCompleted(operation, absl::StatusCode::kDeadlineExceeded,
                                 absl::ZeroDuration());
    std::move(callback)(WithOutcome(absl::DeadlineExceededError("deadline passed before queueing"),
                                    Outcome::kNotApplied));
    return;
  }
  PendingCall call;
  call.info = &info;
  call.event_count = static_cast<uint32_t>(request.events.size() / info.event_size);
  call.expected_results = ExpectedResultCount(info, request.events);
  call.events = std::move(request.events);
  call.ordering_key = options.ordering_key;
  call.deadline = options.deadline;
  call.submitted_at = now;
  call.callback = std::move(callback);
  const uint32_t event_count = call.event_count;
  absl::Status enqueued;
  {
    absl::MutexLock lock(&mutex_);
    enqueued = EnqueueLocked(&call);
  }
  if (!enqueued.ok()) {
    // Only a closed coalescer refuses without naming a bound.
    const RefusalReason reason = AdmissionRefusal(enqueued).value_or(RefusalReason::kClosed);
    return Refuse(operation, reason, std::move(enqueued), std::move(call.callback));
  }
  observer_->OnBatchQueued(operation, event_count);
  RunWake();
}

absl::Status Coalescer::EnqueueLocked(PendingCall* call) {
  if (closed_) return absl::UnavailableError("tbproxy is shutting down");
  absl::StatusOr<AdmissionPermit> permit =
      admission_.TryAdmit(call->event_count, call->events.size());
  if (!permit.ok()) return permit.status();
  call->permit = *std::move(permit);
  call->id = call_id_next_++;
  if (call->ordering_key != 0) ordering_keys_.Add(call->ordering_key, call->id);
  if (call->deadline != absl::InfiniteFuture()) deadlines_.insert({call->deadline, call->id});
  queues_[static_cast<uint8_t>(call->info->operation) - kStateMachineOperationMin].push_back(
      call->id);
  queued_call_count_++;
  const uint64_t id = call->id;
  const auto [position, inserted] = calls_.emplace(id, std::move(*call));
  TB_ASSERT(inserted);
  return absl::OkStatus();
}

PendingCall Coalescer::ForgetLocked(uint64_t call_id) {
  auto found = calls_.find(call_id);
  TB_ASSERT(found != calls_.end());
  PendingCall call = std::move(found->second);
  calls_.erase(found);
  TB_ASSERT(call.permit.queued() == (call.state == PendingCall::State::kQueued));
  if (call.state == PendingCall::State::kQueued) {
    TB_ASSERT(queued_call_count_ > 0);
    queued_call_count_--;
  }
  // Here, under the lock, not when the returned call is destroyed outside it.
  call.permit.Release();
  if (call.ordering_key != 0) ordering_keys_.Remove(call.ordering_key, call.id);
  if (call.deadline != absl::InfiniteFuture()) deadlines_.erase({call.deadline, call.id});
  return call;
}

void Coalescer::FailQueuedCallsLocked(const absl::flat_hash_set<uint64_t>& call_ids,
                                      const absl::Status& status, Completions* completions) {
  if (call_ids.empty()) return;
  for (std::deque<uint64_t>& queue : queues_) {
    std::erase_if(queue, [&call_ids](uint64_t id) { return call_ids.contains(id); });
  }
  for (uint64_t id : call_ids) {
    PendingCall call = ForgetLocked(id);
    TB_ASSERT(call.state == PendingCall::State::kQueued);
    completions->push_back({std::move(call.callback), WithOutcome(status, Outcome::kNotApplied),
                            static_cast<uint8_t>(call.info->operation), call.submitted_at});
  }
}

void Coalescer::ExpireLocked(absl::Time now, Completions* completions) {
  absl::flat_hash_set<uint64_t> expired_queued;
  while (!deadlines_.empty() && deadlines_.begin()->first <= now) {
    const uint64_t id = deadlines_.begin()->second;
    deadlines_.erase(deadlines_.begin());
    PendingCall& call = calls_.at(id);
    // Removed from deadlines_ above, so ForgetLocked will not look for it again.
    call.deadline = absl::InfiniteFuture();
    if (call.state == PendingCall::State::kQueued) {
      expired_queued.insert(id);
      continue;
    }
    // In flight: the message may still commit. Answer now, keep the call until its reply.
    TB_ASSERT(call.callback != nullptr);
    completions->push_back(
        {std::move(call.callback),
         WithOutcome(absl::DeadlineExceededError("deadline passed while in flight"),
                     Outcome::kUnknown),
         static_cast<uint8_t>(call.info->operation), call.submitted_at});
    call.callback = nullptr;
  }
  // The status is only built when needed: it allocates, and most sweeps expire nothing.
  if (expired_queued.empty()) return;
  FailQueuedCallsLocked(expired_queued,
                        absl::DeadlineExceededError("deadline passed while queued"), completions);
}

void Coalescer::ExpireDeadlines(absl::Time now) {
  Completions completions;
  {
    absl::MutexLock lock(&mutex_);
    ExpireLocked(now, &completions);
  }
  Finish(std::move(completions));
}

void Coalescer::Close() {
  absl::MutexLock lock(&mutex_);
  closed_ = true;
}

void Coalescer::FailQueued() {
  Completions completions;
  {
    absl::MutexLock lock(&mutex_);
    absl::flat_hash_set<uint64_t> queued;
    for (const std::deque<uint64_t>& queue : queues_) queued.insert(queue.begin(), queue.end());
    FailQueuedCallsLocked(queued, absl::UnavailableError("tbproxy is shutting down"),
                          &completions);
  }
  Finish(std::move(completions));
}

Coalescer::Counts Coalescer::counts() const {
  absl::MutexLock lock(&mutex_);
  return Counts{.queued_calls = queued_call_count_,
                .in_flight_calls = static_cast<uint32_t>(calls_.size()) - queued_call_count_,
                .in_flight_messages = static_cast<uint32_t>(in_flight_.size()),
                .queued_events = admission_.queued_events(),
                .queued_bytes = admission_.queued_bytes()};
}

bool Coalescer::drained() const {
  absl::MutexLock lock(&mutex_);
  return DrainedLocked();
}

bool Coalescer::AwaitDrained(absl::Time deadline) const {
  absl::MutexLock lock(&mutex_);
  return mutex_.AwaitWithDeadline(absl::Condition(this, &Coalescer::DrainedLocked), deadline);
}

bool Coalescer::DrainedLocked() const { return closed_ && calls_.empty(); }

bool Coalescer::HasQueuedLocked() const { return queued_call_count_ > 0; }

void Coalescer::Finish(Completions completions) {
  if (completions.empty()) return;
  const absl::Time now = Now();
  for (Completion& completion : completions) {
    observer_->OnCallerCompleted(completion.operation, completion.result.status().code(),
                                 now - completion.submitted_at);
    std::move(completion.callback)(std::move(completion.result));
  }
}

}  // namespace tb::proxy
