#include "client_core/operation.h"

#include <algorithm>
#include <array>
#include <cstring>

#include "client_core/assert.h"
#include "client_core/constants.h"
#include "client_core/types.h"

namespace tb {
namespace {

constexpr uint32_t kAccountFilterLimitOffset = offsetof(AccountFilter, limit);
constexpr uint32_t kQueryFilterLimitOffset = offsetof(QueryFilter, limit);
constexpr uint32_t kChangeEventsFilterLimitOffset = offsetof(ChangeEventsFilter, limit);

using enum Operation;
using enum ResultShape;

constexpr std::array<OperationInfo, 20> kOperations = {{
    {kStateMachinePulse, "pulse", 0, 0, false, kNone, 0},
    {kDeprecatedCreateAccountsUnbatched, "deprecated_create_accounts_unbatched", 128, 8, false,
     kSparse, 0},
    {kDeprecatedCreateTransfersUnbatched, "deprecated_create_transfers_unbatched", 128, 8, false,
     kSparse, 0},
    {kDeprecatedLookupAccountsUnbatched, "deprecated_lookup_accounts_unbatched", 16, 128, false,
     kFoundOnly, 0},
    {kDeprecatedLookupTransfersUnbatched, "deprecated_lookup_transfers_unbatched", 16, 128, false,
     kFoundOnly, 0},
    {kDeprecatedGetAccountTransfersUnbatched, "deprecated_get_account_transfers_unbatched", 128,
     128, false, kQuery, kAccountFilterLimitOffset},
    {kDeprecatedGetAccountBalancesUnbatched, "deprecated_get_account_balances_unbatched", 128, 128,
     false, kQuery, kAccountFilterLimitOffset},
    {kDeprecatedQueryAccountsUnbatched, "deprecated_query_accounts_unbatched", 64, 128, false,
     kQuery, kQueryFilterLimitOffset},
    {kDeprecatedQueryTransfersUnbatched, "deprecated_query_transfers_unbatched", 64, 128, false,
     kQuery, kQueryFilterLimitOffset},
    {kGetChangeEvents, "get_change_events", 64, 384, false, kQuery,
     kChangeEventsFilterLimitOffset},
    {kDeprecatedCreateAccountsSparse, "deprecated_create_accounts_sparse", 128, 8, true, kSparse,
     0},
    {kDeprecatedCreateTransfersSparse, "deprecated_create_transfers_sparse", 128, 8, true,
     kSparse, 0},
    {kLookupAccounts, "lookup_accounts", 16, 128, true, kFoundOnly, 0},
    {kLookupTransfers, "lookup_transfers", 16, 128, true, kFoundOnly, 0},
    {kGetAccountTransfers, "get_account_transfers", 128, 128, true, kQuery,
     kAccountFilterLimitOffset},
    {kGetAccountBalances, "get_account_balances", 128, 128, true, kQuery,
     kAccountFilterLimitOffset},
    {kQueryAccounts, "query_accounts", 64, 128, true, kQuery, kQueryFilterLimitOffset},
    {kQueryTransfers, "query_transfers", 64, 128, true, kQuery, kQueryFilterLimitOffset},
    {kCreateAccounts, "create_accounts", 128, 16, true, kDense, 0},
    {kCreateTransfers, "create_transfers", 128, 16, true, kDense, 0},
}};

static_assert([] {
  for (size_t i = 0; i < kOperations.size(); i++) {
    if (static_cast<size_t>(kOperations[i].operation) != kStateMachineOperationMin + i) return false;
  }
  return true;
}());

}  // namespace

const OperationInfo* FindOperation(uint8_t operation) {
  if (operation < kStateMachineOperationMin || operation > kStateMachineOperationMax) {
    return nullptr;
  }
  return &kOperations[operation - kStateMachineOperationMin];
}

const OperationInfo& GetOperationInfo(Operation operation) {
  const OperationInfo* info = FindOperation(static_cast<uint8_t>(operation));
  TB_ASSERT(info != nullptr);
  return *info;
}

bool IsForwardableOperation(uint8_t operation) {
  return operation == static_cast<uint8_t>(kGetChangeEvents) ||
         (operation >= static_cast<uint8_t>(kLookupAccounts) &&
          operation <= static_cast<uint8_t>(kCreateTransfers));
}

uint32_t EventMax(const OperationInfo& info, uint32_t batch_size_limit) {
  TB_ASSERT(batch_size_limit > 0 && batch_size_limit <= kBatchSizeLimitMax);
  if (info.event_size == 0) return 0;
  if (info.shape == kQuery) return 1;
  if (info.multi_batch) {
    return std::min((batch_size_limit - TrailerSize(info.event_size, 1)) / info.event_size,
                    (kMessageBodySizeMax - TrailerSize(info.result_size, 1)) / info.result_size);
  }
  return std::min(batch_size_limit / info.event_size, kMessageBodySizeMax / info.result_size);
}

uint32_t ResultMax(const OperationInfo& info) {
  if (info.result_size == 0) return 0;
  if (info.multi_batch) {
    return (kMessageBodySizeMax - TrailerSize(info.result_size, 1)) / info.result_size;
  }
  return kMessageBodySizeMax / info.result_size;
}

uint32_t ExpectedResultCount(const OperationInfo& info, std::span<const uint8_t> events) {
  if (info.event_size == 0) return 0;
  TB_ASSERT(events.size() % info.event_size == 0);
  const auto count = static_cast<uint32_t>(events.size() / info.event_size);
  if (info.shape != kQuery) return count;
  // A query batch holds one filter; the replica caps its limit at result_max.
  uint32_t expected = 0;
  for (uint32_t i = 0; i < count; i++) {
    uint32_t limit = 0;
    std::memcpy(&limit, events.data() + i * info.event_size + info.limit_offset, sizeof(limit));
    expected += std::min(limit, ResultMax(info));
  }
  return expected;
}

}  // namespace tb
