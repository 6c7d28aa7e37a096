#include "client_core/operation.h"

#include <cstring>
#include <vector>

#include "client_core/constants.h"
#include "client_core/types.h"
#include "gtest/gtest.h"

namespace tb {
namespace {

uint32_t EventMaxOf(Operation operation, uint32_t batch_size_limit) {
  return EventMax(GetOperationInfo(operation), batch_size_limit);
}

TEST(Operation, TrailerSizeMatchesDocumentedTable) {
  EXPECT_EQ(TrailerSize(8, 1), 8u);
  EXPECT_EQ(TrailerSize(8, 3), 8u);
  EXPECT_EQ(TrailerSize(8, 4), 16u);
  EXPECT_EQ(TrailerSize(16, 7), 16u);
  EXPECT_EQ(TrailerSize(16, 8), 32u);
  EXPECT_EQ(TrailerSize(64, 31), 64u);
  EXPECT_EQ(TrailerSize(128, 63), 128u);
  EXPECT_EQ(TrailerSize(128, 64), 256u);
}

// PROTOCOL.md §10.3: the table of event maxima for three request limits.
TEST(Operation, EventMaxMatchesLimitTable) {
  for (auto [limit, creates, lookups, unbatched_creates, unbatched_lookups] :
       std::vector<std::array<uint32_t, 5>>{{1048320, 8189, 8189, 8190, 8190},
                                            {32512, 253, 2031, 254, 2032},
                                            {3840, 29, 239, 30, 240}}) {
    SCOPED_TRACE(limit);
    EXPECT_EQ(EventMaxOf(Operation::kCreateAccounts, limit), creates);
    EXPECT_EQ(EventMaxOf(Operation::kCreateTransfers, limit), creates);
    EXPECT_EQ(EventMaxOf(Operation::kDeprecatedCreateTransfersSparse, limit), creates);
    EXPECT_EQ(EventMaxOf(Operation::kLookupAccounts, limit), lookups);
    EXPECT_EQ(EventMaxOf(Operation::kLookupTransfers, limit), lookups);
    EXPECT_EQ(EventMaxOf(Operation::kDeprecatedCreateAccountsUnbatched, limit), unbatched_creates);
    EXPECT_EQ(EventMaxOf(Operation::kDeprecatedLookupAccountsUnbatched, limit), unbatched_lookups);
    EXPECT_EQ(EventMaxOf(Operation::kQueryAccounts, limit), 1u);
    EXPECT_EQ(EventMaxOf(Operation::kGetChangeEvents, limit), 1u);
  }
}

TEST(Operation, ResultMaxMatchesLimitTable) {
  EXPECT_EQ(ResultMax(GetOperationInfo(Operation::kQueryTransfers)), 8189u);
  EXPECT_EQ(ResultMax(GetOperationInfo(Operation::kGetAccountBalances)), 8189u);
  EXPECT_EQ(ResultMax(GetOperationInfo(Operation::kDeprecatedQueryAccountsUnbatched)), 8190u);
  EXPECT_EQ(ResultMax(GetOperationInfo(Operation::kGetChangeEvents)), 2730u);
}

TEST(Operation, OnlyClientOperationsAreForwardable) {
  for (int operation = 0; operation < 256; operation++) {
    const bool expected = operation == 137 || (operation >= 140 && operation <= 147);
    EXPECT_EQ(IsForwardableOperation(static_cast<uint8_t>(operation)), expected) << operation;
  }
}

TEST(Operation, TableCoversExactlyTheStateMachineOperations) {
  EXPECT_EQ(FindOperation(127), nullptr);
  EXPECT_EQ(FindOperation(148), nullptr);
  EXPECT_EQ(FindOperation(2), nullptr);
  for (int operation = 128; operation <= 147; operation++) {
    const OperationInfo* info = FindOperation(static_cast<uint8_t>(operation));
    ASSERT_NE(info, nullptr);
    EXPECT_EQ(static_cast<int>(info->operation), operation);
  }
  EXPECT_STREQ(GetOperationInfo(Operation::kCreateTransfers).name, "create_transfers");
  EXPECT_FALSE(CanCoalesce(GetOperationInfo(Operation::kGetChangeEvents)));
  EXPECT_TRUE(CanCoalesce(GetOperationInfo(Operation::kLookupTransfers)));
}

TEST(Operation, ExpectedResultsOfAQueryAreItsLimitCappedAtResultMax) {
  QueryFilter filter{};
  filter.limit = 10;
  std::vector<uint8_t> bytes(sizeof(filter));
  std::memcpy(bytes.data(), &filter, sizeof(filter));
  const OperationInfo& query = GetOperationInfo(Operation::kQueryAccounts);
  EXPECT_EQ(ExpectedResultCount(query, bytes), 10u);
  filter.limit = 0xFFFFFFFF;
  std::memcpy(bytes.data(), &filter, sizeof(filter));
  EXPECT_EQ(ExpectedResultCount(query, bytes), 8189u);

  std::vector<uint8_t> transfers(3 * sizeof(Transfer));
  EXPECT_EQ(ExpectedResultCount(GetOperationInfo(Operation::kCreateTransfers), transfers), 3u);
}

TEST(Types, StatusNamesMatchTigerBeetle) {
  EXPECT_STREQ(CreateTransferStatusName(0xFFFFFFFF), "created");
  EXPECT_STREQ(CreateTransferStatusName(68), "id_already_failed");
  EXPECT_STREQ(CreateTransferStatusName(41), "exists_with_different_user_data_128");
  EXPECT_STREQ(CreateTransferStatusName(6), "id_must_not_be_int_max");
  EXPECT_STREQ(CreateTransferStatusName(1000), "");
  EXPECT_STREQ(CreateAccountStatusName(21), "exists");
  EXPECT_STREQ(CreateAccountStatusName(13), "ledger_must_not_be_zero");
}

}  // namespace
}  // namespace tb
