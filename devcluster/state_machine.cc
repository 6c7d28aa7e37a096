// Request framing, the clock and dispatch to the per-operation code.

#include "devcluster/state_machine.h"

#include <algorithm>
#include <cstring>

#include "absl/container/inlined_vector.h"
#include "client_core/assert.h"
#include "client_core/bytes.h"
#include "client_core/multi_batch.h"
#include "client_core/types.h"
#include "devcluster/create.h"
#include "devcluster/internal/query_range.h"
#include "devcluster/pulse.h"
#include "devcluster/queries.h"

namespace tb::devcluster {
namespace {

constexpr uint32_t kChangeEventsMax = 2730;  // ⌊1,048,320 / 384⌋.

bool IsCreate(Operation operation) {
  switch (operation) {
    case Operation::kCreateAccounts:
    case Operation::kCreateTransfers:
    case Operation::kDeprecatedCreateAccountsSparse:
    case Operation::kDeprecatedCreateTransfersSparse:
    case Operation::kDeprecatedCreateAccountsUnbatched:
    case Operation::kDeprecatedCreateTransfersUnbatched:
      return true;
    default:
      return false;
  }
}

bool CreatesAccounts(Operation operation) {
  return operation == Operation::kCreateAccounts ||
         operation == Operation::kDeprecatedCreateAccountsSparse ||
         operation == Operation::kDeprecatedCreateAccountsUnbatched;
}

template <typename Filter>
Filter ReadFilter(std::span<const uint8_t> bytes) {
  Filter filter;
  TB_ASSERT(bytes.size() == sizeof(Filter));
  std::memcpy(&filter, bytes.data(), sizeof(Filter));
  return filter;
}

// Dense results as the operation wants them: all of them (146/147), or only failures as
// {index, status} pairs for the deprecated sparse variants (§16).
void AppendCreateResults(Operation operation, const std::vector<CreateResult>& results,
                         std::vector<uint8_t>& out) {
  const bool sparse =
      operation != Operation::kCreateAccounts && operation != Operation::kCreateTransfers;
  for (size_t index = 0; index < results.size(); index++) {
    const CreateResult& result = results[index];
    if (!sparse) {
      AppendStruct(&out, result);
    } else if (result.status != static_cast<uint32_t>(CreateTransferStatus::kCreated)) {
      static_assert(static_cast<uint32_t>(CreateTransferStatus::kCreated) ==
                    static_cast<uint32_t>(CreateAccountStatus::kCreated));
      AppendStruct(&out, SparseCreateResult{.index = static_cast<uint32_t>(index),
                                               .status = result.status});
    }
  }
}

}  // namespace

StateMachine::StateMachine(StateMachineOptions options)
    : database_(DatabaseOptions{.account_count_reserve = options.account_count_reserve,
                                .transfer_count_reserve = options.transfer_count_reserve}) {
  const uint32_t limit = options.batch_size_limit;
  TB_ASSERT(limit >= kBatchSizeLimitMin && limit <= kBatchSizeLimitMax,
            "batch_size_limit out of range");
  // Each change event needs one transfer and two account prefetches, bounded by the largest
  // lookup batch (§18).
  change_events_max_ = std::min(kChangeEventsMax, std::min(limit / 16, uint32_t{8190}) / 2);
  expiries_per_pulse_max_ = std::min(kPulseExpiriesMax, limit / 128);
  TB_ASSERT(change_events_max_ > 0 && expiries_per_pulse_max_ > 0);
}

ExecuteResult StateMachine::Execute(uint8_t operation, std::span<const uint8_t> body,
                                    uint64_t now_ns) {
  const OperationInfo* info = FindOperation(operation);
  if (info == nullptr || info->operation == Operation::kStateMachinePulse) {
    return {.timestamp = timestamp_, .body = {}};
  }
  MultiBatchView batches;
  if (info->multi_batch) {
    absl::StatusOr<MultiBatchView> decoded = DecodeMultiBatch(body, info->event_size);
    if (!decoded.ok()) return {.timestamp = timestamp_, .body = {}};
    batches = *std::move(decoded);
  } else {
    batches.push_back(body);
  }
  uint64_t event_count = 0;
  for (std::span<const uint8_t> batch : batches) {
    if (batch.size() % info->event_size != 0) return {.timestamp = timestamp_, .body = {}};
    if (IsCreate(info->operation)) event_count += batch.size() / info->event_size;
  }

  const uint64_t base = std::max(timestamp_ + 1, now_ns);
  const uint64_t request_timestamp = base + event_count;
  TB_ASSERT(request_timestamp <= kTimestampMax, "the clock ran past 2^63 − 1");
  std::vector<uint8_t> reply = ExecuteBatches(*info, batches, base);
  timestamp_ = request_timestamp;
  RunDuePulses();
  return {.timestamp = request_timestamp, .body = std::move(reply)};
}

void StateMachine::Tick(uint64_t now_ns) {
  TB_ASSERT(now_ns <= kTimestampMax, "the clock ran past 2^63 − 1");
  timestamp_ = std::max(timestamp_, now_ns);
  RunDuePulses();
}

std::vector<uint8_t> StateMachine::ExecuteBatches(
    const OperationInfo& info, std::span<const std::span<const uint8_t>> batches,
    uint64_t base) {
  std::vector<uint8_t> reply;
  if (!info.multi_batch) {
    TB_ASSERT(batches.size() == 1);
    const uint64_t count = batches[0].size() / info.event_size;
    ExecuteBatch(info, batches[0], IsCreate(info.operation) ? base + count : base, reply);
    return reply;
  }
  MultiBatchEncoder encoder(info.result_size, &reply);
  std::vector<uint8_t> results;
  uint64_t slot_last = base;
  for (std::span<const uint8_t> batch : batches) {
    if (IsCreate(info.operation)) slot_last += batch.size() / info.event_size;
    results.clear();
    ExecuteBatch(info, batch, slot_last, results);
    encoder.AddBatch(results);
  }
  encoder.Finish();
  return reply;
}

void StateMachine::ExecuteBatch(const OperationInfo& info, std::span<const uint8_t> events,
                                uint64_t batch_last_slot, std::vector<uint8_t>& out) {
  const Operation operation = info.operation;
  if (IsCreate(operation)) {
    std::vector<CreateResult> results;
    results.reserve(events.size() / info.event_size);
    if (CreatesAccounts(operation)) {
      CreateAccounts(database_, events, batch_last_slot, results);
    } else {
      CreateTransfers(database_, events, batch_last_slot, results);
    }
    AppendCreateResults(operation, results, out);
    return;
  }
  // Query batches hold exactly one filter (validated by the server); anything else selects
  // nothing rather than reading past the batch.
  const bool one_filter = events.size() == info.event_size;
  const uint32_t result_max = ResultMax(info);
  switch (operation) {
    case Operation::kLookupAccounts:
    case Operation::kDeprecatedLookupAccountsUnbatched:
      LookupAccounts(database_, events, out);
      return;
    case Operation::kLookupTransfers:
    case Operation::kDeprecatedLookupTransfersUnbatched:
      LookupTransfers(database_, events, out);
      return;
    case Operation::kGetAccountTransfers:
    case Operation::kDeprecatedGetAccountTransfersUnbatched:
      if (one_filter) {
        GetAccountTransfers(database_, ReadFilter<AccountFilter>(events), result_max, out);
      }
      return;
    case Operation::kGetAccountBalances:
    case Operation::kDeprecatedGetAccountBalancesUnbatched:
      if (one_filter) {
        GetAccountBalances(database_, ReadFilter<AccountFilter>(events), result_max, out);
      }
      return;
    case Operation::kQueryAccounts:
    case Operation::kDeprecatedQueryAccountsUnbatched:
      if (one_filter) QueryAccounts(database_, ReadFilter<QueryFilter>(events), result_max, out);
      return;
    case Operation::kQueryTransfers:
    case Operation::kDeprecatedQueryTransfersUnbatched:
      if (one_filter) QueryTransfers(database_, ReadFilter<QueryFilter>(events), result_max, out);
      return;
    case Operation::kGetChangeEvents:
      if (one_filter) {
        GetChangeEvents(database_, ReadFilter<ChangeEventsFilter>(events), change_events_max_,
                        out);
      }
      return;
    default:
      return;
  }
}

void StateMachine::RunDuePulses() {
  while (database_.pulse_hint() <= timestamp_) {
    if (timestamp_ > kTimestampMax - kPulseTimestampCount) return;  // The clock is at its end.
    timestamp_ += kPulseTimestampCount;
    RunPulse(database_, timestamp_, expiries_per_pulse_max_);
  }
}

}  // namespace tb::devcluster
