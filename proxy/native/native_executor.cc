#include "proxy/native/native_executor.h"

#include <algorithm>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "client_core/assert.h"
#include "client_core/multi_batch.h"
#include "client_core/operation.h"
#include "client_core/outcome.h"

namespace tb::proxy {

using replica::CompletionFailure;
using replica::ExecuteResult;

replica::CompletionFailure MapFailure(const absl::Status& status) {
  TB_ASSERT(!status.ok());
  if (status.code() == absl::StatusCode::kInvalidArgument) {
    return CompletionFailure::kInvalidRequestBody;
  }
  if (status.code() == absl::StatusCode::kResourceExhausted ||
      GetOutcome(status) == Outcome::kNotApplied) {
    return CompletionFailure::kDrop;
  }
  return CompletionFailure::kSessionLost;
}

uint64_t OrderingKeyOf(u128 client) {
  const uint64_t key = U128Low(client) ^ (U128High(client) * 0x9E3779B97F4A7C15ULL);
  return key == 0 ? 1 : key;
}

struct NativeExecutor::Gather {
  uint64_t token = 0;
  const OperationInfo* info = nullptr;
  absl::Mutex mutex;
  size_t remaining ABSL_GUARDED_BY(mutex) = 0;
  std::vector<std::vector<uint8_t>> results ABSL_GUARDED_BY(mutex);
  std::vector<std::optional<absl::Status>> errors ABSL_GUARDED_BY(mutex);
  std::vector<bool> submitted ABSL_GUARDED_BY(mutex);
  uint64_t timestamp ABSL_GUARDED_BY(mutex) = 0;
};

NativeExecutor::NativeExecutor(
    Submitter* submitter, absl::AnyInvocable<void(uint64_t, NativeCompletion)> complete,
    absl::Duration request_timeout)
    : submitter_(submitter), complete_(std::move(complete)), request_timeout_(request_timeout) {
  TB_ASSERT(submitter_ != nullptr);
}

void NativeExecutor::Start(uint64_t token, u128 client, uint8_t operation,
                           std::span<const uint8_t> body) {
  const OperationInfo* info = FindOperation(operation);
  // ReplicaProtocol validated operation and body (ValidateRequestBody) before starting.
  TB_ASSERT(info != nullptr);
  MultiBatchView batches;
  if (info->multi_batch) {
    absl::StatusOr<MultiBatchView> decoded = DecodeMultiBatch(body, info->event_size);
    if (!decoded.ok()) {
      complete_(token, CompletionFailure::kInvalidRequestBody);
      return;
    }
    batches = *std::move(decoded);
  } else {
    batches.push_back(body);
  }
  if (batches.size() == 1 && !batches[0].empty()) {
    StartSingle(token, client, *info, batches[0]);
    return;
  }
  auto gather = std::make_shared<Gather>();
  gather->token = token;
  gather->info = info;
  {
    absl::MutexLock lock(&gather->mutex);
    gather->remaining = batches.size() + 1;  // +1 until every batch is submitted.
    gather->results.resize(batches.size());
    gather->errors.resize(batches.size());
    gather->submitted.assign(batches.size(), false);
  }
  const absl::Time deadline = absl::Now() + request_timeout_;
  const uint64_t key = OrderingKeyOf(client);
  for (size_t i = 0; i < batches.size(); i++) {
    if (batches[i].empty()) {
      absl::MutexLock lock(&gather->mutex);
      gather->remaining--;  // An empty batch has empty results; nothing to send.
      continue;
    }
    {
      absl::MutexLock lock(&gather->mutex);
      gather->submitted[i] = true;
    }
    batches_submitted_.fetch_add(1, std::memory_order_relaxed);
    submitter_->Submit(
        SubmitRequest{.operation = operation,
                      .events = std::vector<uint8_t>(batches[i].begin(), batches[i].end())},
        SubmitOptions{.deadline = deadline, .ordering_key = key},
        [this, gather, i](absl::StatusOr<SubmitResult> result) {
          bool last = false;
          {
            absl::MutexLock lock(&gather->mutex);
            if (result.ok()) {
              gather->results[i] = std::move(result->results);
              gather->timestamp = std::max(gather->timestamp, result->timestamp);
            } else {
              gather->errors[i] = result.status();
            }
            last = --gather->remaining == 0;
          }
          if (last) Finish(*gather);
        });
  }
  bool last = false;
  {
    absl::MutexLock lock(&gather->mutex);
    last = --gather->remaining == 0;
  }
  if (last) Finish(*gather);
}

// The common request, one non-empty batch: no gathering, so no shared state and no lock.
void NativeExecutor::StartSingle(uint64_t token, u128 client, const OperationInfo& info,
                                 std::span<const uint8_t> batch) {
  batches_submitted_.fetch_add(1, std::memory_order_relaxed);
  const auto operation = static_cast<uint8_t>(info.operation);
  submitter_->Submit(
      SubmitRequest{.operation = operation,
                    .events = std::vector<uint8_t>(batch.begin(), batch.end())},
      SubmitOptions{.deadline = absl::Now() + request_timeout_,
                    .ordering_key = OrderingKeyOf(client)},
      [this, token, info = &info](absl::StatusOr<SubmitResult> result) {
        if (!result.ok()) {
          complete_(token, MapFailure(result.status()));
          return;
        }
        complete_(token, ResultOf(*info, result->timestamp, std::span(&result->results, 1)));
      });
}

ExecuteResult NativeExecutor::ResultOf(const OperationInfo& info, uint64_t timestamp,
                                       std::span<std::vector<uint8_t>> results) {
  ExecuteResult result;
  result.timestamp =
      timestamp != 0 ? timestamp : static_cast<uint64_t>(absl::ToUnixNanos(absl::Now()));
  if (info.multi_batch) {
    // One allocation for the whole body: the results and a trailer of at most
    // 2 * batches + 2 bytes rounded up to a result.
    size_t size = 2 * results.size() + 2 + info.result_size;
    for (const auto& batch : results) size += batch.size();
    result.body.reserve(size);
    MultiBatchEncoder encoder(info.result_size, &result.body);
    for (const auto& batch : results) encoder.AddBatch(batch);
    encoder.Finish();
  } else {
    result.body = std::move(results[0]);
  }
  return result;
}

void NativeExecutor::Finish(Gather& gather) {
  absl::MutexLock lock(&gather.mutex);
  std::optional<CompletionFailure> failure;
  bool some_succeeded = false;
  for (size_t i = 0; i < gather.errors.size(); i++) {
    if (!gather.errors[i].has_value()) {
      if (gather.submitted[i]) some_succeeded = true;
      continue;
    }
    const CompletionFailure mapped = MapFailure(*gather.errors[i]);
    // The most severe failure wins: session lost > invalid body > drop (enum order).
    if (!failure.has_value() || static_cast<int>(mapped) > static_cast<int>(*failure)) {
      failure = mapped;
    }
  }
  if (failure.has_value()) {
    // Dropping makes the client send the whole request again: only safe if nothing applied.
    if (some_succeeded) failure = CompletionFailure::kSessionLost;
    complete_(gather.token, *failure);
    return;
  }
  TB_ASSERT(gather.info->multi_batch || gather.results.size() == 1);
  complete_(gather.token, ResultOf(*gather.info, gather.timestamp, std::span(gather.results)));
}

}  // namespace tb::proxy
