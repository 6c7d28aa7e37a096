#include "bench/loadgen/workload.h"

#include <cstring>
#include <set>
#include <vector>

#include "client_core/types.h"
#include "gtest/gtest.h"

namespace tb::bench {
namespace {

constexpr uint32_t kCreated = 0xFFFFFFFF;

std::vector<Transfer> TransfersOf(const Call& call) {
  std::vector<Transfer> transfers(call.event_count);
  EXPECT_EQ(call.events.size(), call.event_count * sizeof(Transfer));
  std::memcpy(transfers.data(), call.events.data(), transfers.size() * sizeof(Transfer));
  return transfers;
}

// Native create results: one per event, with the given statuses.
std::vector<uint8_t> CreateResults(const std::vector<uint32_t>& statuses) {
  std::vector<uint8_t> bytes(statuses.size() * sizeof(CreateResult));
  for (size_t i = 0; i < statuses.size(); i++) {
    CreateResult result{};
    result.status = statuses[i];
    std::memcpy(bytes.data() + i * sizeof(result), &result, sizeof(result));
  }
  return bytes;
}

TEST(WorkloadTest, RefilledCallMatchesAFreshOneOfTheSameShape) {
  Workload lookups({.mix = {{Operation::kLookupAccounts, 1}}, .events_per_call = 20,
                    .run_tag = 7});
  Workload transfers({.mix = {{Operation::kCreateTransfers, 1}}, .events_per_call = 3,
                      .run_tag = 7});
  Call reused;
  lookups.FillNextCall(0, &reused);  // Leaves 20 lookup ids and 320 bytes behind.
  ASSERT_EQ(reused.lookup_ids.size(), 20u);
  transfers.FillNextCall(0, &reused);
  EXPECT_EQ(reused.operation, Operation::kCreateTransfers);
  EXPECT_EQ(reused.event_count, 3u);
  EXPECT_TRUE(reused.lookup_ids.empty());
  EXPECT_TRUE(reused.expect_found);
  const std::vector<Transfer> got = TransfersOf(reused);

  Workload again({.mix = {{Operation::kCreateTransfers, 1}}, .events_per_call = 3, .run_tag = 7});
  const std::vector<Transfer> want = TransfersOf(*again.NextCall(0));
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); i++) {
    EXPECT_EQ(std::memcmp(&got[i], &want[i], sizeof(Transfer)), 0) << "transfer " << i;
  }
}

TEST(WorkloadTest, EveryCreatedTransferIdIsNewAndItsAccountsDiffer) {
  Workload workload({.mix = {{Operation::kCreateTransfers, 1}}, .events_per_call = 10,
                     .accounts = 2});
  std::set<u128> ids;
  Call call;
  for (uint64_t sequence = 0; sequence < 100; sequence++) {
    workload.FillNextCall(sequence, &call);
    for (const Transfer& transfer : TransfersOf(call)) {
      EXPECT_TRUE(ids.insert(transfer.id).second);
      EXPECT_NE(transfer.debit_account_id, transfer.credit_account_id);
    }
  }
  EXPECT_EQ(ids.size(), 1000u);
}

TEST(WorkloadTest, NativeCreateResultsMustAllBeCreatedAndOnePerEvent) {
  Workload workload({.mix = {{Operation::kCreateTransfers, 1}}, .events_per_call = 3});
  std::shared_ptr<const Call> call = workload.NextCall(0);
  EXPECT_TRUE(CheckNativeResults(*call, CreateResults({kCreated, kCreated, kCreated})).ok());

  const absl::Status wrong = CheckNativeResults(*call, CreateResults({kCreated, 1, kCreated}));
  EXPECT_EQ(wrong.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(wrong.message().find("event 1"), std::string::npos) << wrong;

  EXPECT_EQ(CheckNativeResults(*call, CreateResults({kCreated, kCreated})).code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(CheckNativeResults(*call, CreateResults({kCreated, kCreated, kCreated, kCreated}))
                .code(),
            absl::StatusCode::kDataLoss);
  std::vector<uint8_t> torn = CreateResults({kCreated, kCreated, kCreated});
  torn.pop_back();
  EXPECT_EQ(CheckNativeResults(*call, torn).code(), absl::StatusCode::kDataLoss);
}

TEST(WorkloadTest, LookupsMustFindEveryIdInOrderOrNothingOnAnEchoCluster) {
  Workload workload({.mix = {{Operation::kLookupAccounts, 1}}, .events_per_call = 2});
  std::shared_ptr<const Call> call = workload.NextCall(5);
  ASSERT_EQ(call->lookup_ids.size(), 2u);
  EXPECT_TRUE(CheckLookupIds(*call, call->lookup_ids).ok());
  const std::vector<u128> reversed = {call->lookup_ids[1], call->lookup_ids[0]};
  if (call->lookup_ids[0] != call->lookup_ids[1]) {
    EXPECT_FALSE(CheckLookupIds(*call, reversed).ok());
  }
  EXPECT_FALSE(CheckLookupIds(*call, {}).ok());

  Workload echo({.mix = {{Operation::kLookupAccounts, 1}}, .events_per_call = 2, .echo = true});
  std::shared_ptr<const Call> echo_call = echo.NextCall(5);
  EXPECT_TRUE(CheckLookupIds(*echo_call, {}).ok());
  EXPECT_FALSE(CheckLookupIds(*echo_call, echo_call->lookup_ids).ok());
}

}  // namespace
}  // namespace tb::bench
