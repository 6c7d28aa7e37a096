#include "proxy/native/native_executor.h"

#include <cstring>
#include <optional>
#include <utility>
#include <vector>

#include "client_core/bytes.h"
#include "client_core/multi_batch.h"
#include "client_core/outcome.h"
#include "client_core/testing/events.h"
#include "client_core/types.h"
#include "gtest/gtest.h"

namespace tb::proxy {
namespace {

using replica::CompletionFailure;
using replica::ExecuteResult;

constexpr uint8_t kCreateAccounts = 146;

struct Call {
  SubmitRequest request;
  SubmitOptions options;
  SubmitCallback callback;
};

class FakeSubmitter final : public Submitter {
 public:
  void Submit(SubmitRequest request, SubmitOptions options, SubmitCallback callback) override {
    calls.push_back({std::move(request), options, std::move(callback)});
  }
  std::vector<Call> calls;
};

using client_core::testing::AccountEvents;

std::vector<uint8_t> Result(uint32_t status) {
  return StructBytes(CreateResult{.timestamp = 5, .status = status, .reserved = 0});
}

class NativeExecutorTest : public ::testing::Test {
 protected:
  NativeExecutor executor_{&submitter_, [this](uint64_t token, NativeCompletion completion) {
                             completed_token_ = token;
                             completion_ = std::move(completion);
                           }};
  FakeSubmitter submitter_;
  std::optional<uint64_t> completed_token_;
  std::optional<NativeCompletion> completion_;
};

TEST_F(NativeExecutorTest, SubmitsEachBatchInOrderWithOneKeyAndGathersTheReply) {
  const std::vector<uint8_t> first = AccountEvents(2, 10);
  const std::vector<uint8_t> second = AccountEvents(1, 20);
  const std::span<const uint8_t> batches[] = {first, {}, second};
  const std::vector<uint8_t> body = EncodeMultiBatch(sizeof(Account), batches);
  executor_.Start(7, /*client=*/0xABC, kCreateAccounts, body);
  ASSERT_EQ(submitter_.calls.size(), 2u);  // The empty batch is answered locally.
  EXPECT_EQ(submitter_.calls[0].request.events, first);
  EXPECT_EQ(submitter_.calls[1].request.events, second);
  EXPECT_EQ(submitter_.calls[0].request.operation, kCreateAccounts);
  EXPECT_NE(submitter_.calls[0].options.ordering_key, 0u);
  EXPECT_EQ(submitter_.calls[0].options.ordering_key, submitter_.calls[1].options.ordering_key);
  EXPECT_EQ(submitter_.calls[0].options.ordering_key, OrderingKeyOf(0xABC));

  // Answers arrive out of order; the reply keeps the request's batch order.
  std::move(submitter_.calls[1].callback)(SubmitResult{.timestamp = 300, .results = Result(21)});
  EXPECT_FALSE(completion_.has_value());
  std::move(submitter_.calls[0].callback)(SubmitResult{.timestamp = 200, .results = {}});
  ASSERT_TRUE(completion_.has_value());
  EXPECT_EQ(*completed_token_, 7u);
  const auto* result = std::get_if<ExecuteResult>(&*completion_);
  ASSERT_NE(result, nullptr);
  EXPECT_EQ(result->timestamp, 300u);
  absl::StatusOr<MultiBatchView> decoded = DecodeMultiBatch(result->body, sizeof(CreateResult));
  ASSERT_TRUE(decoded.ok());
  ASSERT_EQ(decoded->size(), 3u);
  EXPECT_TRUE((*decoded)[0].empty());
  EXPECT_TRUE((*decoded)[1].empty());
  const std::vector<uint8_t> expected = Result(21);
  EXPECT_EQ(std::vector<uint8_t>((*decoded)[2].begin(), (*decoded)[2].end()), expected);
}

TEST_F(NativeExecutorTest, OneBatchRequestIsSubmittedAloneAndItsReplyEncoded) {
  const std::vector<uint8_t> events = AccountEvents(1, 30);
  const std::span<const uint8_t> batches[] = {events};
  executor_.Start(9, /*client=*/0xDEF, kCreateAccounts, EncodeMultiBatch(sizeof(Account), batches));
  ASSERT_EQ(submitter_.calls.size(), 1u);
  EXPECT_EQ(submitter_.calls[0].request.events, events);
  EXPECT_EQ(submitter_.calls[0].request.operation, kCreateAccounts);
  EXPECT_EQ(submitter_.calls[0].options.ordering_key, OrderingKeyOf(0xDEF));
  EXPECT_LT(submitter_.calls[0].options.deadline, absl::InfiniteFuture());
  EXPECT_EQ(executor_.batches_submitted(), 1u);
  std::move(submitter_.calls[0].callback)(SubmitResult{.timestamp = 400, .results = Result(3)});
  ASSERT_TRUE(completion_.has_value());
  EXPECT_EQ(*completed_token_, 9u);
  const auto* result = std::get_if<ExecuteResult>(&*completion_);
  ASSERT_NE(result, nullptr);
  EXPECT_EQ(result->timestamp, 400u);
  const std::vector<uint8_t> expected_results = Result(3);
  const std::span<const uint8_t> expected_batches[] = {expected_results};
  EXPECT_EQ(result->body, EncodeMultiBatch(sizeof(CreateResult), expected_batches));
}

TEST_F(NativeExecutorTest, OneBatchRequestRefusedAsFullDrops) {
  const std::vector<uint8_t> events = AccountEvents(1, 31);
  const std::span<const uint8_t> batches[] = {events};
  executor_.Start(4, 5, kCreateAccounts, EncodeMultiBatch(sizeof(Account), batches));
  ASSERT_EQ(submitter_.calls.size(), 1u);
  std::move(submitter_.calls[0].callback)(absl::ResourceExhaustedError("full"));
  ASSERT_TRUE(completion_.has_value());
  EXPECT_EQ(*completed_token_, 4u);
  EXPECT_EQ(std::get<CompletionFailure>(*completion_), CompletionFailure::kDrop);
}

TEST_F(NativeExecutorTest, EveryBatchNotAppliedDrops) {
  const std::vector<uint8_t> events = AccountEvents(1, 1);
  const std::span<const uint8_t> batches[] = {events, events};
  executor_.Start(1, 5, kCreateAccounts, EncodeMultiBatch(sizeof(Account), batches));
  ASSERT_EQ(submitter_.calls.size(), 2u);
  std::move(submitter_.calls[0].callback)(absl::ResourceExhaustedError("full"));
  std::move(submitter_.calls[1].callback)(
      WithOutcome(absl::UnavailableError("closing"), Outcome::kNotApplied));
  ASSERT_TRUE(completion_.has_value());
  EXPECT_EQ(std::get<CompletionFailure>(*completion_), CompletionFailure::kDrop);
}

TEST_F(NativeExecutorTest, PartlyAppliedRequestLosesTheSession) {
  const std::vector<uint8_t> events = AccountEvents(1, 1);
  const std::span<const uint8_t> batches[] = {events, events};
  executor_.Start(1, 5, kCreateAccounts, EncodeMultiBatch(sizeof(Account), batches));
  std::move(submitter_.calls[0].callback)(SubmitResult{.timestamp = 3, .results = {}});
  std::move(submitter_.calls[1].callback)(absl::ResourceExhaustedError("full"));
  ASSERT_TRUE(completion_.has_value());
  EXPECT_EQ(std::get<CompletionFailure>(*completion_), CompletionFailure::kSessionLost);
}

TEST_F(NativeExecutorTest, UnknownOutcomeLosesTheSessionAndInvalidEvictsAsInvalidBody) {
  const std::vector<uint8_t> events = AccountEvents(1, 1);
  const std::span<const uint8_t> batches[] = {events};
  executor_.Start(1, 5, kCreateAccounts, EncodeMultiBatch(sizeof(Account), batches));
  std::move(submitter_.calls[0].callback)(
      WithOutcome(absl::AbortedError("evicted"), Outcome::kUnknown));
  EXPECT_EQ(std::get<CompletionFailure>(*completion_), CompletionFailure::kSessionLost);

  executor_.Start(2, 5, kCreateAccounts, EncodeMultiBatch(sizeof(Account), batches));
  std::move(submitter_.calls[1].callback)(absl::InvalidArgumentError("bad"));
  EXPECT_EQ(*completed_token_, 2u);
  EXPECT_EQ(std::get<CompletionFailure>(*completion_), CompletionFailure::kInvalidRequestBody);
}

TEST(NativeExecutorMapping, MapsStatusesToFailures) {
  EXPECT_EQ(MapFailure(absl::ResourceExhaustedError("")), CompletionFailure::kDrop);
  EXPECT_EQ(MapFailure(WithOutcome(absl::DeadlineExceededError(""), Outcome::kNotApplied)),
            CompletionFailure::kDrop);
  EXPECT_EQ(MapFailure(WithOutcome(absl::DeadlineExceededError(""), Outcome::kUnknown)),
            CompletionFailure::kSessionLost);
  EXPECT_EQ(MapFailure(absl::UnavailableError("")), CompletionFailure::kSessionLost);
  EXPECT_EQ(MapFailure(absl::InvalidArgumentError("")), CompletionFailure::kInvalidRequestBody);
}

}  // namespace
}  // namespace tb::proxy
