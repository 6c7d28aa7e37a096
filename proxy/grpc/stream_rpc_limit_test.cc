#include "proxy/grpc/stream_rpc_limit.h"

#include <atomic>
#include <thread>
#include <utility>
#include <vector>

#include "client_core/outcome.h"
#include "gtest/gtest.h"

namespace tb::proxy {
namespace {

TEST(StreamRpcLimit, RefusesPastTheBoundWithNotAppliedAndANamedSetting) {
  StreamRpcLimit limit(2);
  absl::StatusOr<StreamRpcSlot> first = limit.TryAcquire();
  absl::StatusOr<StreamRpcSlot> second = limit.TryAcquire();
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(limit.open(), 2u);

  absl::StatusOr<StreamRpcSlot> third = limit.TryAcquire();
  ASSERT_FALSE(third.ok());
  EXPECT_EQ(third.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(GetOutcome(third.status()), Outcome::kNotApplied);
  EXPECT_NE(third.status().message().find("--stream-rpcs-max"), absl::string_view::npos);
  EXPECT_EQ(limit.open(), 2u);
  EXPECT_EQ(limit.refused(), 1u);
}

TEST(StreamRpcLimit, AReleasedSlotCanBeTakenAgain) {
  StreamRpcLimit limit(1);
  absl::StatusOr<StreamRpcSlot> slot = limit.TryAcquire();
  ASSERT_TRUE(slot.ok());
  EXPECT_FALSE(limit.TryAcquire().ok());
  slot->Release();
  EXPECT_FALSE(slot->held());
  EXPECT_EQ(limit.open(), 0u);
  slot->Release();  // A second release gives nothing back twice.
  EXPECT_EQ(limit.open(), 0u);
  EXPECT_TRUE(limit.TryAcquire().ok());
}

TEST(StreamRpcLimit, DestructionAndMovesGiveBackExactlyOnce) {
  StreamRpcLimit limit(3);
  {
    absl::StatusOr<StreamRpcSlot> slot = limit.TryAcquire();
    ASSERT_TRUE(slot.ok());
    StreamRpcSlot moved = std::move(*slot);
    EXPECT_FALSE(slot->held());
    EXPECT_TRUE(moved.held());
    EXPECT_EQ(limit.open(), 1u);

    absl::StatusOr<StreamRpcSlot> other = limit.TryAcquire();
    ASSERT_TRUE(other.ok());
    EXPECT_EQ(limit.open(), 2u);
    moved = std::move(*other);  // Gives back what `moved` held, takes `other`'s.
    EXPECT_EQ(limit.open(), 1u);
  }
  EXPECT_EQ(limit.open(), 0u);
}

// Threads race for the last free place: they never hold more than it, and every refusal and
// release is counted. A thread holding the place asks again, so refusals happen even when the
// threads happen to run one after another.
TEST(StreamRpcLimit, RacingThreadsNeverHoldMoreThanTheFreePlaces) {
  constexpr uint32_t kMax = 8;
  constexpr int kThreads = 8;
  constexpr int kRounds = 20'000;
  StreamRpcLimit limit(kMax);
  std::vector<StreamRpcSlot> taken_first;
  for (uint32_t i = 0; i + 1 < kMax; i++) {
    absl::StatusOr<StreamRpcSlot> slot = limit.TryAcquire();
    ASSERT_TRUE(slot.ok());
    taken_first.push_back(*std::move(slot));
  }
  std::atomic<uint32_t> held{0};
  std::atomic<uint32_t> held_peak{0};
  std::atomic<uint64_t> acquired{0};
  std::vector<std::thread> threads;
  for (int thread = 0; thread < kThreads; thread++) {
    threads.emplace_back([&] {
      std::vector<StreamRpcSlot> mine;
      for (int round = 0; round < kRounds; round++) {
        absl::StatusOr<StreamRpcSlot> slot = limit.TryAcquire();
        if (slot.ok()) {
          acquired.fetch_add(1);
          // Counted after taking and before giving back, so `held` never exceeds what is held.
          const uint32_t now = held.fetch_add(1) + 1;
          uint32_t peak = held_peak.load();
          while (now > peak && !held_peak.compare_exchange_weak(peak, now)) {
          }
          mine.push_back(*std::move(slot));
        } else if (!mine.empty()) {
          held.fetch_sub(static_cast<uint32_t>(mine.size()));
          mine.clear();
        }
      }
      held.fetch_sub(static_cast<uint32_t>(mine.size()));
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_LE(held_peak.load(), 1u);
  EXPECT_EQ(limit.open(), kMax - 1);
  EXPECT_EQ(acquired.load() + limit.refused(), uint64_t{kThreads} * kRounds);
  // A thread holding the place asks again and is refused, unless that was its last round.
  EXPECT_GE(limit.refused() + kThreads, acquired.load());
  EXPECT_GT(limit.refused(), 0u);
  taken_first.clear();
  EXPECT_EQ(limit.open(), 0u);
}

}  // namespace
}  // namespace tb::proxy
