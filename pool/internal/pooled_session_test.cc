#include "pool/internal/pooled_session.h"

#include "client_core/multi_batch.h"
#include "client_core/operation.h"
#include "client_core/request_validation.h"
#include "gtest/gtest.h"

namespace tb::pool::internal {
namespace {

TEST(KeepWarmBody, IsOneEmptyLookupAccountsBatch) {
  const std::vector<uint8_t> body = KeepWarmBody();
  ASSERT_EQ(body.size(), kKeepWarmBodySize);
  const OperationInfo* info = FindOperation(kKeepWarmOperation);
  ASSERT_NE(info, nullptr);
  EXPECT_EQ(info->operation, Operation::kLookupAccounts);
  absl::StatusOr<MultiBatchView> batches = DecodeMultiBatch(body, info->event_size);
  ASSERT_TRUE(batches.ok()) << batches.status();
  ASSERT_EQ(batches->size(), 1u);
  EXPECT_TRUE((*batches)[0].empty());
  EXPECT_EQ(body, EncodeMultiBatch(info->event_size, {}));
}

TEST(KeepWarmBody, PassesTheReplicaChecksAtTheSmallestLimit) {
  const OperationInfo* info = FindOperation(kKeepWarmOperation);
  ASSERT_NE(info, nullptr);
  EXPECT_TRUE(ValidateRequestBody(*info, KeepWarmBody(), kBatchSizeLimitMin).ok());
  EXPECT_TRUE(IsForwardableOperation(kKeepWarmOperation));
}

}  // namespace
}  // namespace tb::pool::internal
