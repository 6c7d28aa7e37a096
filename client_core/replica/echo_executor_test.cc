#include "client_core/replica/echo_executor.h"

#include <cstring>
#include <vector>

#include "client_core/multi_batch.h"
#include "client_core/types.h"
#include "gtest/gtest.h"

namespace tb::replica {
namespace {

std::vector<uint8_t> Encode(uint32_t element_size, const std::vector<int>& counts) {
  std::vector<std::vector<uint8_t>> storage;
  std::vector<std::span<const uint8_t>> batches;
  for (int count : counts) storage.emplace_back(count * element_size, 0);
  for (const auto& batch : storage) batches.emplace_back(batch);
  return EncodeMultiBatch(element_size, batches);
}

TEST(EchoExecutor, CreatesSucceedWithConsecutiveTimestampsAcrossBatches) {
  EchoExecutor echo;
  const ExecuteResult result = echo.Execute(146, Encode(128, {2, 0, 3}), 1000);
  EXPECT_EQ(result.timestamp, 1005u);
  auto batches = DecodeMultiBatch(result.body, sizeof(CreateResult));
  ASSERT_TRUE(batches.ok());
  ASSERT_EQ(batches->size(), 3u);
  EXPECT_EQ((*batches)[1].size(), 0u);
  uint64_t expected = 1001;
  for (int b : {0, 2}) {
    for (size_t i = 0; i < (*batches)[b].size() / sizeof(CreateResult); i++) {
      CreateResult r;
      std::memcpy(&r, (*batches)[b].data() + i * sizeof(r), sizeof(r));
      EXPECT_EQ(r.status, static_cast<uint32_t>(CreateTransferStatus::kCreated));
      EXPECT_EQ(r.timestamp, expected++);
    }
  }
}

TEST(EchoExecutor, LookupsAndQueriesFindNothingAndTimestampsKeepRising) {
  EchoExecutor echo;
  const ExecuteResult lookup = echo.Execute(140, Encode(16, {4, 1}), 50);
  auto batches = DecodeMultiBatch(lookup.body, 128);
  ASSERT_TRUE(batches.ok());
  ASSERT_EQ(batches->size(), 2u);
  EXPECT_TRUE((*batches)[0].empty() && (*batches)[1].empty());
  EXPECT_EQ(lookup.timestamp, 50u);
  const ExecuteResult query = echo.Execute(144, Encode(64, {1}), 10);  // Clock went back.
  EXPECT_EQ(query.timestamp, 51u);
  const ExecuteResult changes = echo.Execute(137, std::vector<uint8_t>(64, 0), 10);
  EXPECT_TRUE(changes.body.empty());
  EXPECT_EQ(changes.timestamp, 52u);
}

}  // namespace
}  // namespace tb::replica
