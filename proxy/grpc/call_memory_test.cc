#include "proxy/grpc/call_memory.h"

#include <atomic>
#include <cstddef>
#include <cstring>
#include <thread>
#include <vector>

#include "client_core/constants.h"
#include "client_core/outcome.h"
#include "client_core/types.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tb::proxy {
namespace {

using ::testing::HasSubstr;

// The fixed parts and the multiple of native bytes, as call_memory.cc states them.
constexpr uint64_t kUnary = 16 * 1024;
constexpr uint64_t kStream = 1024;
constexpr uint64_t kPerByte = 4;

TEST(CallMemoryBound, CreatesAndLookupsCountTheirRequestAndOneResultPerEvent) {
  const std::vector<uint8_t> transfers(10 * 128);
  EXPECT_EQ(CallMemoryBound(147, transfers, CallKind::kUnary),
            kUnary + kPerByte * (10 * 128 + 10 * 16));
  const std::vector<uint8_t> ids(8189 * 16);
  EXPECT_EQ(CallMemoryBound(140, ids, CallKind::kStream),
            kStream + kPerByte * (8189 * 16 + 8189 * 128));
}

TEST(CallMemoryBound, AQueryCountsItsLimitAndNeverMoreThanOneReply) {
  std::vector<uint8_t> filter(sizeof(QueryFilter));
  uint32_t limit = 10;
  std::memcpy(filter.data() + offsetof(QueryFilter, limit), &limit, sizeof(limit));
  EXPECT_EQ(CallMemoryBound(144, filter, CallKind::kUnary), kUnary + kPerByte * (64 + 10 * 128));
  limit = 1'000'000;  // The replica caps it; so does the bound.
  std::memcpy(filter.data() + offsetof(QueryFilter, limit), &limit, sizeof(limit));
  EXPECT_LE(CallMemoryBound(144, filter, CallKind::kUnary),
            kUnary + kPerByte * (64 + kMessageBodySizeMax));
  EXPECT_GT(CallMemoryBound(144, filter, CallKind::kUnary), kUnary + kPerByte * (64 + 8000 * 128));
}

TEST(CallMemoryBound, AnUnknownOperationOrPartialEventsCountAWholeReply) {
  const std::vector<uint8_t> bytes(100);
  EXPECT_EQ(CallMemoryBound(7, bytes, CallKind::kUnary),
            kUnary + kPerByte * (100 + kMessageBodySizeMax));
  EXPECT_EQ(CallMemoryBound(147, bytes, CallKind::kUnary),
            kUnary + kPerByte * (100 + kMessageBodySizeMax));
}

TEST(CallMemoryBudget, RefusesWhatDoesNotFitWithNotAppliedAndTheSettingsName) {
  CallMemoryBudget budget(1000);
  absl::StatusOr<CallMemoryReservation> first = budget.TryReserve(600);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(budget.reserved(), 600u);
  absl::StatusOr<CallMemoryReservation> second = budget.TryReserve(401);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(GetOutcome(second.status()), Outcome::kNotApplied);
  EXPECT_THAT(second.status().message(), HasSubstr("--grpc-call-memory-max"));
  EXPECT_EQ(budget.refused(), 1u);
  absl::StatusOr<CallMemoryReservation> exact = budget.TryReserve(400);
  ASSERT_TRUE(exact.ok());
  EXPECT_EQ(budget.reserved(), 1000u);
  EXPECT_FALSE(budget.TryReserve(1).ok());
  EXPECT_FALSE(budget.TryReserve(UINT64_MAX).ok()) << "no overflow past the bound";
}

TEST(CallMemoryBudget, AReservationGivesItsBytesBackOnceWhetherReleasedMovedOrDestroyed) {
  CallMemoryBudget budget(1000);
  {
    absl::StatusOr<CallMemoryReservation> reserved = budget.TryReserve(300);
    ASSERT_TRUE(reserved.ok());
    CallMemoryReservation moved = *std::move(reserved);
    EXPECT_EQ(moved.units(), 300u);
    EXPECT_EQ(budget.reserved(), 300u);
    CallMemoryReservation assigned;
    assigned = std::move(moved);
    EXPECT_EQ(budget.reserved(), 300u);
    assigned.Release();
    EXPECT_EQ(budget.reserved(), 0u);
    assigned.Release();  // Nothing is given back twice.
    EXPECT_EQ(budget.reserved(), 0u);
    absl::StatusOr<CallMemoryReservation> kept = budget.TryReserve(700);
    ASSERT_TRUE(kept.ok());
  }
  EXPECT_EQ(budget.reserved(), 0u);
}

TEST(CallMemoryBudget, ManyThreadsNeverReserveMoreThanTheBound) {
  constexpr uint64_t kMax = 10'000;
  CallMemoryBudget budget(kMax);
  std::atomic<bool> over{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; t++) {
    threads.emplace_back([&budget, &over] {
      for (int i = 0; i < 20'000; i++) {
        absl::StatusOr<CallMemoryReservation> reserved = budget.TryReserve(1 + i % 3000);
        if (budget.reserved() > kMax) over = true;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_FALSE(over.load());
  EXPECT_EQ(budget.reserved(), 0u);
}

}  // namespace
}  // namespace tb::proxy
