// Building messages from the queues and splitting their replies (the pool's side of the
// coalescer). Intake and deadlines are in coalescer.cc.
#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "client_core/assert.h"
#include "client_core/constants.h"
#include "client_core/multi_batch.h"
#include "client_core/outcome.h"
#include "client_core/request_validation.h"
#include "proxy/coalescer/coalescer.h"

namespace tb::proxy {

using internal::PendingCall;

std::optional<uint64_t> Coalescer::FirstSendableLocked(const std::deque<uint64_t>& queue) const {
  for (uint64_t id : queue) {
    const PendingCall& call = calls_.at(id);
    if (ordering_keys_.IsNext(call.ordering_key, id, 0)) return id;
  }
  return std::nullopt;
}

const OperationInfo* Coalescer::ChooseOperationLocked() const {
  // Idle sessions ask often; with nothing queued there is no queue worth scanning.
  if (!HasQueuedLocked()) return nullptr;
  // FIFO across operations: the operation whose oldest sendable call is oldest goes first, so a
  // busy operation cannot starve a quiet one.
  const OperationInfo* chosen = nullptr;
  uint64_t chosen_id = 0;
  for (size_t index = 0; index < queues_.size(); index++) {
    if (queues_[index].empty()) continue;
    std::optional<uint64_t> first = FirstSendableLocked(queues_[index]);
    if (!first.has_value()) continue;
    if (chosen == nullptr || *first < chosen_id) {
      chosen = FindOperation(static_cast<uint8_t>(kStateMachineOperationMin + index));
      chosen_id = *first;
    }
  }
  return chosen;
}

Coalescer::MessagePlan Coalescer::PlanMessageLocked(const OperationInfo& info,
                                                    uint32_t batch_size_limit,
                                                    Completions* completions) {
  MessagePacker packer(info, batch_size_limit);
  MessagePlan plan{.info = &info};
  // Per ordering key: how many of its calls this message already carries.
  absl::flat_hash_map<uint64_t, uint32_t> carried;
  absl::flat_hash_set<uint64_t> too_large;
  const std::deque<uint64_t>& queue = queues_[static_cast<uint8_t>(info.operation) -
                                              kStateMachineOperationMin];
  // Calls passed over (held back by their key, or too large for what is left) cost a scan
  // each; past this many the message goes as it is, so one TakeMessage stays cheap however
  // long the queue grows. The calls passed over lead a later message.
  constexpr uint32_t kPassedOverMax = 4096;
  uint32_t passed_over = 0;
  for (uint64_t id : queue) {
    if (packer.full()) break;
    if (passed_over > kPassedOverMax && !plan.call_ids.empty()) break;
    const PendingCall& call = calls_.at(id);
    uint32_t earlier = 0;
    if (call.ordering_key != 0) {
      auto found = carried.find(call.ordering_key);
      if (found != carried.end()) earlier = found->second;
    }
    if (!ordering_keys_.IsNext(call.ordering_key, id, earlier)) {
      passed_over++;
      continue;
    }
    // Submit validated against the limit of its moment; this session's limit may be smaller.
    if (!ValidateBatch(info, call.events, batch_size_limit).ok()) {
      too_large.insert(id);
      continue;
    }
    // A batch that does not fit any more stays queued at its place (it leads the next
    // message); smaller ones behind it may still fill this one.
    if (!packer.TryAdd(call.event_count, call.expected_results)) {
      passed_over++;
      continue;
    }
    plan.call_ids.push_back(id);
    plan.event_count += call.event_count;
    plan.oldest_submitted_at = std::min(plan.oldest_submitted_at, call.submitted_at);
    if (call.ordering_key != 0) carried[call.ordering_key]++;
  }
  plan.body_size = packer.body_size();
  plan.failed_count = static_cast<uint32_t>(too_large.size());
  if (too_large.empty()) return plan;  // Spares building the status below.
  FailQueuedCallsLocked(
      too_large,
      absl::InvalidArgumentError(absl::StrCat(
          "batch does not fit the session's batch_size_limit of ", batch_size_limit)),
      completions);
  return plan;
}

void Coalescer::DequeueLocked(const MessagePlan& plan) {
  std::deque<uint64_t>& queue =
      queues_[static_cast<uint8_t>(plan.info->operation) - kStateMachineOperationMin];
  // Usually the plan is the queue's first calls (it follows queue order): pop them.
  size_t prefix = 0;
  while (prefix < plan.call_ids.size() && prefix < queue.size() &&
         queue[prefix] == plan.call_ids[prefix]) {
    prefix++;
  }
  if (prefix == plan.call_ids.size()) {
    queue.erase(queue.begin(), queue.begin() + static_cast<ptrdiff_t>(prefix));
    return;
  }
  const absl::flat_hash_set<uint64_t> taken(plan.call_ids.begin(), plan.call_ids.end());
  std::erase_if(queue, [&taken](uint64_t id) { return taken.contains(id); });
}

pool::OutgoingMessage Coalescer::CommitLocked(MessagePlan plan, uint32_t batch_size_limit,
                                              absl::Time now) {
  const OperationInfo& info = *plan.info;
  TB_ASSERT(!plan.call_ids.empty());
  TB_ASSERT(info.multi_batch || plan.call_ids.size() == 1, "137 always travels alone");
  const uint64_t message_id = message_id_next_++;
  InFlightMessage record{.info = &info};
  record.batches.reserve(plan.call_ids.size());
  std::vector<uint8_t> body;
  body.reserve(plan.body_size);
  std::optional<MultiBatchEncoder> encoder;
  if (info.multi_batch) {
    encoder.emplace(info.event_size, &body);
    encoder->ReserveBatches(plan.call_ids.size());
  }
  // The pool sends a message again (after losing a session) only before its earliest caller's
  // deadline; expired calls were failed out of the queue before planning.
  absl::Time deadline = absl::InfiniteFuture();
  for (uint64_t id : plan.call_ids) {
    PendingCall& call = calls_.at(id);
    TB_ASSERT(call.state == PendingCall::State::kQueued);
    deadline = std::min(deadline, call.deadline);
    if (encoder.has_value()) {
      encoder->AddBatch(call.events);
    } else {
      body = call.events;
    }
    record.batches.push_back(
        {.event_count = call.event_count, .expected_results = call.expected_results});
    call.state = PendingCall::State::kInFlight;
    call.message_id = message_id;
    call.permit.ReleaseQueued();
    queued_call_count_--;
    call.events = {};
  }
  if (encoder.has_value()) encoder->Finish();
  TB_ASSERT(body.size() == plan.body_size);
  TB_ASSERT(body.size() <= batch_size_limit);

  DequeueLocked(plan);

  observer_->OnMessageBuilt(MessageStats{
      .operation = static_cast<uint8_t>(info.operation),
      .event_count = static_cast<uint32_t>(plan.event_count),
      .batch_count = static_cast<uint32_t>(plan.call_ids.size()),
      .body_size = static_cast<uint32_t>(body.size()),
      .limit_fill = static_cast<double>(body.size()) / batch_size_limit,
      .queue_wait = now - plan.oldest_submitted_at});
  record.call_ids = std::move(plan.call_ids);
  in_flight_.emplace(message_id, std::move(record));
  return pool::OutgoingMessage{
      .operation = static_cast<uint8_t>(info.operation),
      .body = std::move(body),
      .enqueued_at = plan.oldest_submitted_at,
      .deadline = deadline,
      .on_done =
          [this, message_id](absl::StatusOr<pool::ClusterReply> reply) {
            OnMessageDone(message_id, std::move(reply));
          },
  };
}

std::optional<pool::OutgoingMessage> Coalescer::TakeMessage(uint32_t batch_size_limit) {
  // Below kBatchSizeLimitMin no cluster can be configured (--limit-request >= 4096), and the
  // limit formulas assume at least one trailer fits.
  if (batch_size_limit < kBatchSizeLimitMin || batch_size_limit > kBatchSizeLimitMax) {
    return std::nullopt;
  }
  const absl::Time now = Now();
  Completions completions;
  std::optional<pool::OutgoingMessage> message;
  {
    absl::MutexLock lock(&mutex_);
    ExpireLocked(now, &completions);
    while (const OperationInfo* info = ChooseOperationLocked()) {
      MessagePlan plan = PlanMessageLocked(*info, batch_size_limit, &completions);
      if (plan.call_ids.empty()) {
        // The chosen operation's first sendable call always fits an empty message unless it
        // is too large for this limit, and then it was just failed: progress either way.
        TB_ASSERT(plan.failed_count > 0);
        continue;
      }
      message = CommitLocked(std::move(plan), batch_size_limit, now);
      break;
    }
  }
  Finish(std::move(completions));
  return message;
}

void Coalescer::OnMessageDone(uint64_t message_id, absl::StatusOr<pool::ClusterReply> reply) {
  InFlightMessage record;
  std::vector<PendingCall> calls;
  bool wake = false;
  {
    absl::MutexLock lock(&mutex_);
    auto found = in_flight_.find(message_id);
    TB_ASSERT(found != in_flight_.end(), "on_done runs once per message");
    record = std::move(found->second);
    in_flight_.erase(found);
    calls.reserve(record.call_ids.size());
    for (uint64_t id : record.call_ids) calls.push_back(ForgetLocked(id));
    wake = HasQueuedLocked();
  }
  const auto operation = static_cast<uint8_t>(record.info->operation);
  // Splitting the reply is pure work on data we now own: done without the lock.
  absl::Status failure;
  absl::StatusOr<BatchResults> results;
  if (!reply.ok()) {
    failure = reply.status();
    if (!GetOutcome(failure).has_value()) failure = WithOutcome(failure, Outcome::kUnknown);
  } else {
    results = DemultiplexReply(*record.info, record.batches, reply->body);
    if (!results.ok()) failure = WithOutcome(results.status(), Outcome::kUnknown);
  }
  Completions completions;
  completions.reserve(calls.size());
  uint32_t late_count = 0;
  for (size_t i = 0; i < calls.size(); i++) {
    PendingCall& call = calls[i];
    if (!call.callback) {
      if (failure.ok()) late_count++;
      continue;
    }
    absl::StatusOr<SubmitResult> result;
    if (failure.ok()) {
      const std::span<const uint8_t> bytes = (*results)[i];
      result = SubmitResult{.timestamp = reply->timestamp,
                            .results = std::vector<uint8_t>(bytes.begin(), bytes.end())};
    } else {
      result = failure;
    }
    completions.push_back(
        {std::move(call.callback), std::move(result), operation, call.submitted_at});
  }
  if (late_count > 0) observer_->OnLateResultsDropped(operation, late_count);
  Finish(std::move(completions));
  if (wake) RunWake();
}

}  // namespace tb::proxy
