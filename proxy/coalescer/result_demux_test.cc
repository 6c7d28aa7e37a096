#include "proxy/coalescer/result_demux.h"

#include <cstring>
#include <vector>

#include "client_core/multi_batch.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tb::proxy {
namespace {

const OperationInfo& Info(Operation operation) { return GetOperationInfo(operation); }

std::vector<uint8_t> Elements(uint32_t count, uint32_t size, uint8_t fill) {
  return std::vector<uint8_t>(size_t{count} * size, fill);
}

std::vector<uint8_t> Encode(uint32_t element_size, const std::vector<std::vector<uint8_t>>& batches) {
  std::vector<std::span<const uint8_t>> views(batches.begin(), batches.end());
  return EncodeMultiBatch(element_size, views);
}

TEST(DemultiplexReply, SplitsDenseCreateResultsByBatch) {
  const std::vector<SentBatch> sent = {{2, 2}, {0, 0}, {1, 1}};
  const std::vector<uint8_t> body =
      Encode(16, {Elements(2, 16, 0xA1), Elements(0, 16, 0), Elements(1, 16, 0xC3)});
  absl::StatusOr<BatchResults> results = DemultiplexReply(Info(Operation::kCreateAccounts), sent, body);
  ASSERT_TRUE(results.ok()) << results.status();
  ASSERT_EQ(results->size(), 3u);
  EXPECT_EQ((*results)[0].size(), 32u);
  EXPECT_EQ((*results)[0][0], 0xA1);
  EXPECT_TRUE((*results)[1].empty());
  EXPECT_EQ((*results)[2].size(), 16u);
  EXPECT_EQ((*results)[2][0], 0xC3);
}

TEST(DemultiplexReply, RefusesADenseBatchWithTooFewResults) {
  const std::vector<SentBatch> sent = {{2, 2}};
  const std::vector<uint8_t> body = Encode(16, {Elements(1, 16, 0)});
  absl::StatusOr<BatchResults> results =
      DemultiplexReply(Info(Operation::kCreateTransfers), sent, body);
  EXPECT_EQ(results.status().code(), absl::StatusCode::kInternal);
}

TEST(DemultiplexReply, RefusesABatchCountThatDiffersFromTheRequest) {
  const std::vector<SentBatch> sent = {{1, 1}, {1, 1}};
  const std::vector<uint8_t> body = Encode(128, {Elements(1, 128, 0)});
  EXPECT_EQ(DemultiplexReply(Info(Operation::kLookupAccounts), sent, body).status().code(),
            absl::StatusCode::kInternal);
}

TEST(DemultiplexReply, LookupsGetTheirFoundObjectsOnly) {
  const std::vector<SentBatch> sent = {{3, 3}, {2, 2}};
  const std::vector<uint8_t> body = Encode(128, {Elements(1, 128, 1), Elements(2, 128, 2)});
  absl::StatusOr<BatchResults> results =
      DemultiplexReply(Info(Operation::kLookupTransfers), sent, body);
  ASSERT_TRUE(results.ok()) << results.status();
  EXPECT_EQ((*results)[0].size(), 128u);
  EXPECT_EQ((*results)[1].size(), 256u);
}

TEST(DemultiplexReply, RefusesMoreFoundObjectsThanIds) {
  const std::vector<SentBatch> sent = {{1, 1}};
  const std::vector<uint8_t> body = Encode(128, {Elements(2, 128, 1)});
  EXPECT_EQ(DemultiplexReply(Info(Operation::kLookupAccounts), sent, body).status().code(),
            absl::StatusCode::kInternal);
}

TEST(DemultiplexReply, QueriesAreBoundByTheirExpectedResults) {
  const std::vector<SentBatch> sent = {{1, 3}, {1, 0}};
  const std::vector<uint8_t> good = Encode(128, {Elements(3, 128, 1), Elements(0, 128, 0)});
  EXPECT_TRUE(DemultiplexReply(Info(Operation::kQueryAccounts), sent, good).ok());
  const std::vector<uint8_t> bad = Encode(128, {Elements(3, 128, 1), Elements(1, 128, 0)});
  EXPECT_EQ(DemultiplexReply(Info(Operation::kQueryAccounts), sent, bad).status().code(),
            absl::StatusCode::kInternal);
}

TEST(DemultiplexReply, ChangeEventsGetTheWholeBody) {
  const std::vector<SentBatch> sent = {{1, 5}};
  const std::vector<uint8_t> body = Elements(5, 384, 7);
  absl::StatusOr<BatchResults> results =
      DemultiplexReply(Info(Operation::kGetChangeEvents), sent, body);
  ASSERT_TRUE(results.ok()) << results.status();
  ASSERT_EQ(results->size(), 1u);
  EXPECT_EQ((*results)[0].size(), body.size());
  EXPECT_TRUE(DemultiplexReply(Info(Operation::kGetChangeEvents), sent, {}).ok());
}

TEST(DemultiplexReply, RefusesMalformedChangeEventReplies) {
  const std::vector<SentBatch> sent = {{1, 2}};
  EXPECT_FALSE(DemultiplexReply(Info(Operation::kGetChangeEvents), sent, Elements(3, 384, 0)).ok());
  EXPECT_FALSE(DemultiplexReply(Info(Operation::kGetChangeEvents), sent,
                                std::vector<uint8_t>(385, 0))
                   .ok());
}

TEST(DemultiplexReply, RefusesBodiesThatDoNotDecode) {
  const std::vector<SentBatch> sent = {{1, 1}};
  const OperationInfo& info = Info(Operation::kCreateAccounts);
  EXPECT_EQ(DemultiplexReply(info, sent, {}).status().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(DemultiplexReply(info, sent, std::vector<uint8_t>(1, 0)).status().code(),
            absl::StatusCode::kInternal);
  std::vector<uint8_t> body = Encode(16, {Elements(1, 16, 0)});
  body[body.size() - 5] = 0x00;  // Padding must be 0xFF.
  EXPECT_EQ(DemultiplexReply(info, sent, body).status().code(), absl::StatusCode::kInternal);
  body = Encode(16, {Elements(1, 16, 0)});
  body.push_back(0);  // Not a whole trailer any more.
  EXPECT_EQ(DemultiplexReply(info, sent, body).status().code(), absl::StatusCode::kInternal);
}

TEST(DemultiplexReply, NeverCrashesOnRandomBodies) {
  const std::vector<SentBatch> sent = {{2, 2}, {1, 1}};
  uint64_t state = 0x9E3779B97F4A7C15ull;
  for (int round = 0; round < 2000; round++) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    std::vector<uint8_t> body((state >> 33) % 200);
    for (uint8_t& byte : body) {
      state = state * 6364136223846793005ull + 1442695040888963407ull;
      byte = (state >> 60) < 8 ? 0xFF : static_cast<uint8_t>(state >> 56);
    }
    absl::StatusOr<BatchResults> results =
        DemultiplexReply(Info(Operation::kCreateAccounts), sent, body);
    if (results.ok()) {
      EXPECT_EQ((*results)[0].size(), 32u);
      EXPECT_EQ((*results)[1].size(), 16u);
    }
  }
}

}  // namespace
}  // namespace tb::proxy
