#include "proxy/coalescer/message_packer.h"

#include "client_core/constants.h"
#include "gtest/gtest.h"

namespace tb::proxy {
namespace {

const OperationInfo& Info(Operation operation) { return GetOperationInfo(operation); }

TEST(MessagePacker, OneCreateBatchOf8189EventsFillsTheDefaultLimitExactly) {
  MessagePacker packer(Info(Operation::kCreateAccounts), kBatchSizeLimitMax);
  EXPECT_FALSE(packer.Fits(8190, 8190));
  ASSERT_TRUE(packer.TryAdd(8189, 8189));
  EXPECT_EQ(packer.body_size(), kBatchSizeLimitMax);  // 8189·128 + 128.
  EXPECT_FALSE(packer.Fits(1, 1));
  // An empty batch costs only two trailer bytes, and T(128, 2) = T(128, 1).
  EXPECT_FALSE(packer.full());
  EXPECT_TRUE(packer.TryAdd(0, 0));
}

TEST(MessagePacker, TwoBatchesShareTheLimitWithOneTrailer) {
  MessagePacker packer(Info(Operation::kCreateTransfers), kBatchSizeLimitMax);
  ASSERT_TRUE(packer.TryAdd(4095, 4095));
  EXPECT_FALSE(packer.Fits(4095, 4095));
  ASSERT_TRUE(packer.TryAdd(4094, 4094));
  EXPECT_EQ(packer.batch_count(), 2u);
  EXPECT_EQ(packer.event_count(), 8189u);
  EXPECT_EQ(packer.body_size(), kBatchSizeLimitMax);
}

TEST(MessagePacker, TrailerGrowsByOneElementAtTheSixtyFourthBatch) {
  // T(128, 63) = 128 but T(128, 64) = 256: with L = 64·128 + 128, 64 one-event batches would
  // fit only if the trailer stayed one element long.
  const uint32_t limit = 64 * 128 + 128;
  MessagePacker packer(Info(Operation::kCreateAccounts), limit);
  for (int i = 0; i < 63; i++) ASSERT_TRUE(packer.TryAdd(1, 1)) << i;
  EXPECT_EQ(packer.body_size(), 63u * 128 + 128);
  EXPECT_FALSE(packer.Fits(1, 1));
  EXPECT_TRUE(packer.Fits(0, 0));  // 63·128 + 256 = 8320 = L.
  ASSERT_TRUE(packer.TryAdd(0, 0));
  EXPECT_EQ(packer.body_size(), limit);
}

TEST(MessagePacker, QueriesAreBoundByTheReplySize) {
  // 81 filters with limit 100: 8100·128 + T(128, 81) = 1,037,056 <= B; 82 would need 1,049,856.
  MessagePacker packer(Info(Operation::kQueryAccounts), kBatchSizeLimitMax);
  for (int i = 0; i < 81; i++) ASSERT_TRUE(packer.TryAdd(1, 100)) << i;
  EXPECT_FALSE(packer.Fits(1, 100));
  EXPECT_TRUE(packer.Fits(1, 10));
  EXPECT_LE(packer.reply_size_max(), kMessageBodySizeMax);
}

TEST(MessagePacker, OneQueryWithTheLargestLimitFillsTheReply) {
  MessagePacker packer(Info(Operation::kGetAccountTransfers), kBatchSizeLimitMax);
  ASSERT_TRUE(packer.TryAdd(1, 8189));
  EXPECT_EQ(packer.reply_size_max(), kMessageBodySizeMax);
  EXPECT_FALSE(packer.Fits(1, 1));
  // A filter with limit 0 expects no result, and T(128, 2) = T(128, 1): it still fits.
  EXPECT_TRUE(packer.Fits(1, 0));
}

TEST(MessagePacker, AtMost65534Batches) {
  MessagePacker packer(Info(Operation::kCreateAccounts), kBatchSizeLimitMax);
  for (uint32_t i = 0; i < kMultiBatchCountMax; i++) ASSERT_TRUE(packer.TryAdd(0, 0)) << i;
  EXPECT_EQ(packer.batch_count(), kMultiBatchCountMax);
  EXPECT_FALSE(packer.Fits(0, 0));
  EXPECT_TRUE(packer.full());
  EXPECT_EQ(packer.body_size(), TrailerSize(128, kMultiBatchCountMax));
}

TEST(MessagePacker, ChangeEventsTravelAlone) {
  MessagePacker packer(Info(Operation::kGetChangeEvents), kBatchSizeLimitMax);
  EXPECT_FALSE(packer.Fits(2, 2));
  ASSERT_TRUE(packer.TryAdd(1, 2730));
  EXPECT_EQ(packer.body_size(), 64u);  // No trailer.
  EXPECT_TRUE(packer.full());
  EXPECT_FALSE(packer.Fits(1, 0));
}

TEST(MessagePacker, RespectsASmallSessionLimit) {
  MessagePacker packer(Info(Operation::kCreateAccounts), kBatchSizeLimitMin);  // 3,840.
  EXPECT_FALSE(packer.Fits(30, 30));
  ASSERT_TRUE(packer.TryAdd(29, 29));  // 29·128 + 128 = 3,840.
  EXPECT_FALSE(packer.Fits(1, 1));
}

TEST(MessagePacker, LookupsPackUntilTheRequestLimit) {
  MessagePacker packer(Info(Operation::kLookupAccounts), kBatchSizeLimitMin);
  // 239 ids fill 3,824 + 16 = 3,840 in one batch.
  ASSERT_TRUE(packer.TryAdd(200, 200));
  ASSERT_TRUE(packer.TryAdd(39, 39));  // 239·16 + T(16, 2) = 3,840.
  EXPECT_FALSE(packer.Fits(1, 1));
  // Empty batches still fit while the trailer stays one element: T(16, n) = 16 up to n = 7.
  for (int i = 0; i < 5; i++) ASSERT_TRUE(packer.TryAdd(0, 0)) << i;
  EXPECT_FALSE(packer.Fits(0, 0));  // T(16, 8) = 32.
}

}  // namespace
}  // namespace tb::proxy
