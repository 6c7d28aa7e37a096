#include "proxy/coalescer/coalescer.h"

#include <cstring>
#include <deque>
#include <vector>

#include "client_core/constants.h"
#include "client_core/outcome.h"
#include "client_core/testing/events.h"
#include "client_core/testing/fake_clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proxy/testing/coalescer_helpers.h"

namespace tb::proxy {
namespace {

using testing::AccountQuery;
using client_core::testing::AccountEvents;
using testing::Answer;
using testing::ChangeEventsQuery;
using testing::CountingObserver;
using testing::EncodeBatches;
using client_core::testing::FakeClock;
using testing::Ids;
using testing::Reply;
using testing::Transfers;

constexpr uint8_t kCreateAccounts = 146;
constexpr uint8_t kCreateTransfers = 147;
constexpr uint8_t kLookupAccounts = 140;
constexpr uint8_t kQueryAccounts = 144;
constexpr uint8_t kGetChangeEvents = 137;

class CoalescerTest : public ::testing::Test {
 protected:
  CoalescerOptions Options() {
    CoalescerOptions options;
    options.clock = &clock_;
    options.observer = &observer_;
    return options;
  }
  void Make(CoalescerOptions options) {
    coalescer_ = std::make_unique<Coalescer>(std::move(options), [this] { wakes_++; });
  }
  void SetUp() override { Make(Options()); }

  void Submit(uint8_t operation, std::vector<uint8_t> events, Answer* answer,
              SubmitOptions options = {}) {
    coalescer_->Submit({.operation = operation, .events = std::move(events)}, options,
                       answer->Callback());
  }
  std::optional<pool::OutgoingMessage> Take(uint32_t limit = kBatchSizeLimitMax) {
    return coalescer_->TakeMessage(limit);
  }
  // Answers a create message with one result per event, status = the event's index in its batch.
  static void ReplyDense(pool::OutgoingMessage& message, uint64_t timestamp) {
    absl::StatusOr<MultiBatchView> batches = DecodeMultiBatch(message.body, 128);
    ASSERT_TRUE(batches.ok());
    std::vector<std::vector<uint8_t>> results;
    for (std::span<const uint8_t> batch : *batches) {
      std::vector<uint8_t> result(batch.size() / 128 * 16, 0);
      for (size_t i = 0; i < result.size() / 16; i++) result[i * 16 + 8] = static_cast<uint8_t>(i);
      results.push_back(result);
    }
    std::move(message.on_done)(Reply(timestamp, EncodeBatches(16, results)));
  }

  FakeClock clock_;
  CountingObserver observer_;
  int wakes_ = 0;
  std::unique_ptr<Coalescer> coalescer_;
};

TEST_F(CoalescerTest, AnIdleSessionTakesALoneCallAtOnce) {
  Answer answer;
  Submit(kCreateAccounts, AccountEvents(2), &answer);
  EXPECT_EQ(wakes_, 1);
  EXPECT_EQ(answer.count(), 0);
  std::optional<pool::OutgoingMessage> message = Take();
  ASSERT_TRUE(message.has_value());
  EXPECT_EQ(message->operation, kCreateAccounts);
  EXPECT_EQ(message->body, EncodeBatches(128, {AccountEvents(2)}));
  EXPECT_EQ(message->enqueued_at, clock_.Now());
  EXPECT_FALSE(Take().has_value());

  ReplyDense(*message, 77);
  ASSERT_EQ(answer.count(), 1);
  ASSERT_TRUE(answer.ok()) << answer.result()->status();
  EXPECT_EQ((*answer.result())->timestamp, 77u);
  EXPECT_EQ((*answer.result())->results.size(), 32u);
  EXPECT_EQ((*answer.result())->results[24], 1);
  EXPECT_EQ(observer_.completed(), 1);
}

TEST_F(CoalescerTest, QueuedCallsOfOneOperationShareAMessageAsSeparateBatches) {
  Answer a, b, c;
  Submit(kCreateAccounts, AccountEvents(3, 10), &a);
  Submit(kCreateAccounts, AccountEvents(0), &b);
  Submit(kCreateAccounts, AccountEvents(1, 20), &c);
  std::optional<pool::OutgoingMessage> message = Take();
  ASSERT_TRUE(message.has_value());
  EXPECT_EQ(message->body, EncodeBatches(128, {AccountEvents(3, 10), AccountEvents(0), AccountEvents(1, 20)}));
  ReplyDense(*message, 5);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ((*a.result())->results.size(), 48u);
  EXPECT_EQ((*a.result())->results[40], 2);
  EXPECT_TRUE((*b.result())->results.empty());
  EXPECT_EQ((*c.result())->results.size(), 16u);
  ASSERT_EQ(observer_.messages().size(), 1u);
  EXPECT_EQ(observer_.messages()[0].batch_count, 3u);
  EXPECT_EQ(observer_.messages()[0].event_count, 4u);
}

TEST_F(CoalescerTest, PacksUpTo8189EventsAndMovesTheRestToTheNextMessage) {
  Answer a, b, c;
  Submit(kCreateTransfers, Transfers(4095), &a);
  Submit(kCreateTransfers, Transfers(4095), &b);
  Submit(kCreateTransfers, Transfers(4094), &c);
  std::optional<pool::OutgoingMessage> first = Take();
  ASSERT_TRUE(first.has_value());
  // a + c = 8189 events: exactly the limit; b would have been 8190.
  EXPECT_EQ(first->body.size(), kBatchSizeLimitMax);
  EXPECT_EQ(first->body, EncodeBatches(128, {Transfers(4095), Transfers(4094)}));
  std::optional<pool::OutgoingMessage> second = Take();
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->body, EncodeBatches(128, {Transfers(4095)}));
  ReplyDense(*second, 2);
  ReplyDense(*first, 1);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ((*a.result())->timestamp, 1u);
  EXPECT_EQ((*b.result())->timestamp, 2u);
  EXPECT_EQ((*c.result())->timestamp, 1u);
  EXPECT_EQ((*c.result())->results.size(), 4094u * 16);
  EXPECT_DOUBLE_EQ(observer_.messages()[0].limit_fill, 1.0);
}

TEST_F(CoalescerTest, TrailerGrowthDecidesWhereTheMessageEnds) {
  ASSERT_TRUE(coalescer_->SetBatchSizeLimit(64 * 128 + 128));
  std::vector<Answer> answers(100);
  for (Answer& answer : answers) Submit(kCreateAccounts, AccountEvents(1), &answer);
  std::optional<pool::OutgoingMessage> first = Take(64 * 128 + 128);
  ASSERT_TRUE(first.has_value());
  // 64 one-event batches would need a 256-byte trailer: 63 go.
  EXPECT_EQ(first->body.size(), 63u * 128 + 128);
  std::optional<pool::OutgoingMessage> second = Take(64 * 128 + 128);
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->body.size(), 37u * 128 + 128);
}

TEST_F(CoalescerTest, QueriesArePackedByTheirReplySize) {
  std::vector<Answer> answers(82);
  for (Answer& answer : answers) Submit(kQueryAccounts, AccountQuery(100), &answer);
  std::optional<pool::OutgoingMessage> first = Take();
  ASSERT_TRUE(first.has_value());
  absl::StatusOr<MultiBatchView> batches = DecodeMultiBatch(first->body, 64);
  ASSERT_TRUE(batches.ok());
  EXPECT_EQ(batches->size(), 81u);
  std::optional<pool::OutgoingMessage> second = Take();
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->body, EncodeBatches(64, {AccountQuery(100)}));
}

TEST_F(CoalescerTest, AtMost65534BatchesPerMessage) {
  CoalescerOptions options = Options();
  options.callers_max = 70'000;
  Make(std::move(options));
  std::deque<Answer> answers(kMultiBatchCountMax + 1);
  for (Answer& answer : answers) Submit(kCreateAccounts, {}, &answer);
  std::optional<pool::OutgoingMessage> first = Take();
  ASSERT_TRUE(first.has_value());
  absl::StatusOr<MultiBatchView> batches = DecodeMultiBatch(first->body, 128);
  ASSERT_TRUE(batches.ok());
  EXPECT_EQ(batches->size(), kMultiBatchCountMax);
  std::optional<pool::OutgoingMessage> second = Take();
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->body, EncodeBatches(128, {{}}));
  ReplyDense(*first, 1);
  ReplyDense(*second, 2);
  for (const Answer& answer : answers) ASSERT_TRUE(answer.ok());
  EXPECT_EQ((*answers.back().result())->timestamp, 2u);
}

TEST_F(CoalescerTest, ChangeEventsAlwaysTravelAlone) {
  Answer a, b;
  Submit(kGetChangeEvents, ChangeEventsQuery(10), &a);
  Submit(kGetChangeEvents, ChangeEventsQuery(20), &b);
  std::optional<pool::OutgoingMessage> first = Take();
  std::optional<pool::OutgoingMessage> second = Take();
  ASSERT_TRUE(first.has_value() && second.has_value());
  EXPECT_EQ(first->body, ChangeEventsQuery(10));  // No trailer.
  EXPECT_EQ(second->body, ChangeEventsQuery(20));
  std::move(first->on_done)(Reply(3, std::vector<uint8_t>(2 * 384, 9)));
  ASSERT_TRUE(a.ok());
  EXPECT_EQ((*a.result())->results.size(), 2u * 384);
  // More change events than the filter's limit allows is a malformed reply.
  std::move(second->on_done)(Reply(4, std::vector<uint8_t>(21 * 384, 9)));
  EXPECT_EQ(b.code(), absl::StatusCode::kInternal);
}

TEST_F(CoalescerTest, TheOperationWithTheOldestCallGoesFirst) {
  Answer a, b, c, d;
  Submit(kCreateTransfers, Transfers(1), &a);
  Submit(kCreateAccounts, AccountEvents(1), &b);
  Submit(kCreateAccounts, AccountEvents(1), &c);
  Submit(kCreateTransfers, Transfers(2), &d);
  std::optional<pool::OutgoingMessage> first = Take();
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->operation, kCreateTransfers);
  EXPECT_EQ(first->body, EncodeBatches(128, {Transfers(1), Transfers(2)}));
  Answer e;
  Submit(kCreateTransfers, Transfers(3), &e);
  std::optional<pool::OutgoingMessage> second = Take();
  ASSERT_TRUE(second.has_value());
  // b waited longer than e, although transfers keep arriving.
  EXPECT_EQ(second->operation, kCreateAccounts);
  std::optional<pool::OutgoingMessage> third = Take();
  ASSERT_TRUE(third.has_value());
  EXPECT_EQ(third->operation, kCreateTransfers);
}

TEST_F(CoalescerTest, RefusesInvalidInputAlone) {
  Answer bad_operation, pulse, ragged, two_filters, too_large_limit, too_many;
  Submit(139, AccountEvents(1), &bad_operation);
  Submit(128, {}, &pulse);
  Submit(kCreateAccounts, std::vector<uint8_t>(129, 0), &ragged);
  std::vector<uint8_t> filters = AccountQuery(1);
  std::vector<uint8_t> second = AccountQuery(1);
  filters.insert(filters.end(), second.begin(), second.end());
  Submit(kQueryAccounts, filters, &two_filters);
  Submit(kQueryAccounts, AccountQuery(8190), &too_large_limit);
  Submit(kCreateAccounts, AccountEvents(8190), &too_many);
  for (Answer* answer : {&bad_operation, &pulse, &ragged, &two_filters, &too_large_limit,
                         &too_many}) {
    ASSERT_EQ(answer->count(), 1);
    EXPECT_EQ(answer->code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(answer->outcome(), Outcome::kNotApplied);
  }
  EXPECT_EQ(observer_.refused().size(), 6u);
  EXPECT_EQ(wakes_, 0);
  EXPECT_FALSE(Take().has_value());
}

TEST_F(CoalescerTest, ValidatesAgainstTheLimitTheSessionsAnnounced) {
  ASSERT_TRUE(coalescer_->SetBatchSizeLimit(kBatchSizeLimitMin));
  EXPECT_FALSE(coalescer_->SetBatchSizeLimit(0));
  EXPECT_FALSE(coalescer_->SetBatchSizeLimit(kBatchSizeLimitMin - 1));
  EXPECT_FALSE(coalescer_->SetBatchSizeLimit(kBatchSizeLimitMax + 1));
  EXPECT_EQ(coalescer_->batch_size_limit(), kBatchSizeLimitMin);
  Answer fits, too_many;
  Submit(kCreateAccounts, AccountEvents(29), &fits);
  Submit(kCreateAccounts, AccountEvents(30), &too_many);
  EXPECT_EQ(fits.count(), 0);
  EXPECT_EQ(too_many.code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(CoalescerTest, ABatchTooLargeForASmallerSessionLimitFailsAlone) {
  Answer large, small;
  Submit(kCreateAccounts, AccountEvents(100), &large);
  Submit(kCreateAccounts, AccountEvents(2), &small);
  std::optional<pool::OutgoingMessage> message = Take(kBatchSizeLimitMin);
  ASSERT_TRUE(message.has_value());
  EXPECT_EQ(large.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(large.outcome(), Outcome::kNotApplied);
  EXPECT_EQ(message->body, EncodeBatches(128, {AccountEvents(2)}));
  EXPECT_EQ(small.count(), 0);
}

TEST_F(CoalescerTest, RefusesBeyondTheCallerBound) {
  CoalescerOptions options = Options();
  options.callers_max = 2;
  Make(std::move(options));
  Answer a, b, c;
  Submit(kCreateAccounts, AccountEvents(1), &a);
  Submit(kLookupAccounts, Ids(std::vector<uint64_t>{1}), &b);
  Submit(kCreateAccounts, AccountEvents(1), &c);
  EXPECT_EQ(c.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(c.outcome(), Outcome::kNotApplied);
  EXPECT_THAT(observer_.refused(), ::testing::ElementsAre(RefusalReason::kCallers));
  // In-flight callers still count: the bound frees only when the message is answered.
  std::optional<pool::OutgoingMessage> message = Take();
  ASSERT_TRUE(message.has_value());
  Answer d;
  Submit(kCreateAccounts, AccountEvents(1), &d);
  EXPECT_EQ(d.code(), absl::StatusCode::kResourceExhausted);
  ReplyDense(*message, 1);
  Answer e;
  Submit(kCreateAccounts, AccountEvents(1), &e);
  EXPECT_EQ(e.count(), 0);
}

TEST_F(CoalescerTest, EveryWayOutOfTheQueueGivesTheCallerSlotBack) {
  CoalescerOptions options = Options();
  options.callers_max = 1;
  Make(std::move(options));
  Answer expired, refused, failed, sent;
  Submit(kCreateAccounts, AccountEvents(1), &expired, {.deadline = clock_.Now() + absl::Seconds(1)});
  Submit(kCreateAccounts, AccountEvents(1), &refused);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.result()->status().message(), "coalescer bound reached: callers_max");
  clock_.Advance(absl::Seconds(1));
  coalescer_->ExpireDeadlines(clock_.Now());
  EXPECT_EQ(expired.code(), absl::StatusCode::kDeadlineExceeded);
  Submit(kCreateAccounts, AccountEvents(1), &failed);
  EXPECT_EQ(failed.count(), 0);
  coalescer_->FailQueued();
  EXPECT_EQ(failed.code(), absl::StatusCode::kUnavailable);
  Submit(kCreateAccounts, AccountEvents(1), &sent);
  EXPECT_EQ(sent.count(), 0);
  std::optional<pool::OutgoingMessage> message = Take();
  ASSERT_TRUE(message.has_value());
  ReplyDense(*message, 1);
  EXPECT_TRUE(sent.ok());
  EXPECT_EQ(coalescer_->counts().queued_events, 0u);
  EXPECT_EQ(coalescer_->counts().queued_bytes, 0u);
  Answer last;
  Submit(kCreateAccounts, AccountEvents(1), &last);
  EXPECT_EQ(last.count(), 0);
}

TEST_F(CoalescerTest, RefusesBeyondTheQueuedEventAndByteBounds) {
  CoalescerOptions options = Options();
  options.queued_events_max = 10;
  options.queued_bytes_max = 8 * 128 + 16;
  Make(std::move(options));
  Answer a, b, c, d;
  Submit(kCreateAccounts, AccountEvents(8), &a);
  Submit(kCreateAccounts, AccountEvents(3), &b);  // 11 events.
  EXPECT_EQ(b.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(b.outcome(), Outcome::kNotApplied);
  Submit(kLookupAccounts, Ids(std::vector<uint64_t>{1}), &c);  // 9 events, 1,040 bytes.
  EXPECT_EQ(c.count(), 0);
  Submit(kLookupAccounts, Ids(std::vector<uint64_t>{2}), &d);  // 10 events, 1,056 bytes.
  EXPECT_EQ(d.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(observer_.refused(), ::testing::ElementsAre(RefusalReason::kQueuedEvents,
                                                          RefusalReason::kQueuedBytes));
  // Taking the queue frees the event and byte bounds at once.
  ASSERT_TRUE(Take().has_value());
  ASSERT_TRUE(Take().has_value());
  EXPECT_EQ(coalescer_->counts().queued_events, 0u);
  EXPECT_EQ(coalescer_->counts().queued_bytes, 0u);
  Answer e;
  Submit(kCreateAccounts, AccountEvents(8), &e);
  EXPECT_EQ(e.count(), 0);
}

TEST_F(CoalescerTest, AQueuedCallPastItsDeadlineLeavesTheQueueNotApplied) {
  Answer a, b;
  Submit(kCreateAccounts, AccountEvents(1), &a, {.deadline = clock_.Now() + absl::Seconds(1)});
  Submit(kCreateAccounts, AccountEvents(1, 2), &b, {.deadline = clock_.Now() + absl::Seconds(5)});
  clock_.Advance(absl::Seconds(1));
  coalescer_->ExpireDeadlines(clock_.Now());
  EXPECT_EQ(a.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(a.outcome(), Outcome::kNotApplied);
  EXPECT_EQ(b.count(), 0);
  std::optional<pool::OutgoingMessage> message = Take();
  ASSERT_TRUE(message.has_value());
  EXPECT_EQ(message->body, EncodeBatches(128, {AccountEvents(1, 2)}));
  EXPECT_EQ(coalescer_->counts().queued_calls, 0u);
}

TEST_F(CoalescerTest, AMessageCarriesTheEarliestDeadlineOfItsCallers) {
  // The pool sends a message again after losing its session only before this deadline.
  Answer a, b, c;
  Submit(kCreateAccounts, AccountEvents(1, 1), &a, {.deadline = clock_.Now() + absl::Seconds(5)});
  Submit(kCreateAccounts, AccountEvents(1, 2), &b, {.deadline = clock_.Now() + absl::Seconds(2)});
  Submit(kCreateAccounts, AccountEvents(1, 3), &c);
  std::optional<pool::OutgoingMessage> message = Take();
  ASSERT_TRUE(message.has_value());
  EXPECT_EQ(message->deadline, clock_.Now() + absl::Seconds(2));
  Answer d;
  Submit(kCreateAccounts, AccountEvents(1, 4), &d);
  std::optional<pool::OutgoingMessage> without = Take();
  ASSERT_TRUE(without.has_value());
  EXPECT_EQ(without->deadline, absl::InfiniteFuture());
}

TEST_F(CoalescerTest, TakeMessageExpiresDeadlinesFirst) {
  Answer a;
  Submit(kCreateAccounts, AccountEvents(1), &a, {.deadline = clock_.Now() + absl::Seconds(1)});
  clock_.Advance(absl::Seconds(2));
  EXPECT_FALSE(Take().has_value());
  EXPECT_EQ(a.code(), absl::StatusCode::kDeadlineExceeded);
}

TEST_F(CoalescerTest, AnInFlightCallPastItsDeadlineIsToldUnknownAndItsResultsAreDropped) {
  Answer a, b;
  Submit(kCreateAccounts, AccountEvents(1), &a, {.deadline = clock_.Now() + absl::Seconds(1)});
  Submit(kCreateAccounts, AccountEvents(1, 2), &b);
  std::optional<pool::OutgoingMessage> message = Take();
  ASSERT_TRUE(message.has_value());
  clock_.Advance(absl::Seconds(1));
  coalescer_->ExpireDeadlines(clock_.Now());
  ASSERT_EQ(a.count(), 1);
  EXPECT_EQ(a.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(a.outcome(), Outcome::kUnknown);
  EXPECT_EQ(coalescer_->counts().in_flight_calls, 2u);
  ReplyDense(*message, 9);
  EXPECT_EQ(a.count(), 1);
  EXPECT_TRUE(b.ok());
  EXPECT_EQ(observer_.late(), 1);
  EXPECT_EQ(coalescer_->counts().in_flight_calls, 0u);
}

TEST_F(CoalescerTest, ADeadlineAlreadyPastIsRefusedWithoutQueueing) {
  Answer a;
  Submit(kCreateAccounts, AccountEvents(1), &a, {.deadline = clock_.Now()});
  EXPECT_EQ(a.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(a.outcome(), Outcome::kNotApplied);
  EXPECT_FALSE(Take().has_value());
}

TEST_F(CoalescerTest, CallsWithOneOrderingKeyWaitForEarlierOperations) {
  Answer accounts, transfers, other;
  Submit(kCreateAccounts, AccountEvents(2), &accounts, {.ordering_key = 7});
  Submit(kCreateTransfers, Transfers(1), &transfers, {.ordering_key = 7});
  Submit(kCreateTransfers, Transfers(2), &other, {.ordering_key = 8});
  std::optional<pool::OutgoingMessage> first = Take();
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->operation, kCreateAccounts);
  // The key-7 transfer waits for the accounts; key 8 does not.
  std::optional<pool::OutgoingMessage> second = Take();
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->body, EncodeBatches(128, {Transfers(2)}));
  EXPECT_FALSE(Take().has_value());
  const int wakes_before = wakes_;
  ReplyDense(*first, 1);
  EXPECT_GT(wakes_, wakes_before);  // Another idle session may now take the transfer.
  std::optional<pool::OutgoingMessage> third = Take();
  ASSERT_TRUE(third.has_value());
  EXPECT_EQ(third->body, EncodeBatches(128, {Transfers(1)}));
}

TEST_F(CoalescerTest, CallsWithOneOrderingKeyMayTravelInOrderInOneMessage) {
  Answer a, b, c;
  Submit(kCreateAccounts, AccountEvents(1, 1), &a, {.ordering_key = 3});
  Submit(kCreateAccounts, AccountEvents(1, 2), &b, {.ordering_key = 3});
  Submit(kCreateAccounts, AccountEvents(1, 3), &c);
  std::optional<pool::OutgoingMessage> message = Take();
  ASSERT_TRUE(message.has_value());
  EXPECT_EQ(message->body,
            EncodeBatches(128, {AccountEvents(1, 1), AccountEvents(1, 2), AccountEvents(1, 3)}));
}

TEST_F(CoalescerTest, AKeyedCallThatDoesNotFitHoldsBackItsSuccessors) {
  ASSERT_TRUE(coalescer_->SetBatchSizeLimit(kBatchSizeLimitMin));
  Answer a, b, c, d;
  Submit(kCreateAccounts, AccountEvents(20, 1), &a);
  Submit(kCreateAccounts, AccountEvents(20, 100), &b, {.ordering_key = 1});
  Submit(kCreateAccounts, AccountEvents(1, 200), &c, {.ordering_key = 1});
  Submit(kCreateAccounts, AccountEvents(1, 300), &d);
  std::optional<pool::OutgoingMessage> first = Take(kBatchSizeLimitMin);
  ASSERT_TRUE(first.has_value());
  // b does not fit next to a, so c (same key) may not overtake it; d may.
  EXPECT_EQ(first->body, EncodeBatches(128, {AccountEvents(20, 1), AccountEvents(1, 300)}));
  std::optional<pool::OutgoingMessage> second = Take(kBatchSizeLimitMin);
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->body, EncodeBatches(128, {AccountEvents(20, 100), AccountEvents(1, 200)}));
}

TEST_F(CoalescerTest, AKeyedCallThatLeftTheQueueUnblocksItsSuccessor) {
  Answer a, b;
  Submit(kCreateAccounts, AccountEvents(1, 1), &a,
         {.deadline = clock_.Now() + absl::Seconds(1), .ordering_key = 4});
  Submit(kCreateTransfers, Transfers(1), &b, {.ordering_key = 4});
  clock_.Advance(absl::Seconds(1));
  std::optional<pool::OutgoingMessage> message = Take();
  ASSERT_TRUE(message.has_value());
  EXPECT_EQ(message->operation, kCreateTransfers);
  EXPECT_EQ(a.code(), absl::StatusCode::kDeadlineExceeded);
}

TEST_F(CoalescerTest, AKeyedCallAnsweredEarlyInFlightStillHoldsBackItsSuccessor) {
  Answer a, b;
  Submit(kCreateAccounts, AccountEvents(1, 1), &a,
         {.deadline = clock_.Now() + absl::Seconds(1), .ordering_key = 4});
  std::optional<pool::OutgoingMessage> first = Take();
  ASSERT_TRUE(first.has_value());
  Submit(kCreateTransfers, Transfers(1), &b, {.ordering_key = 4});
  clock_.Advance(absl::Seconds(1));
  coalescer_->ExpireDeadlines(clock_.Now());
  EXPECT_EQ(a.code(), absl::StatusCode::kDeadlineExceeded);
  // a may still commit: b must not overtake it.
  EXPECT_FALSE(Take().has_value());
  ReplyDense(*first, 1);
  std::optional<pool::OutgoingMessage> second = Take();
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->operation, kCreateTransfers);
}

TEST_F(CoalescerTest, ALongHeldBackQueueDoesNotBlockOtherCalls) {
  Answer head;
  Submit(kCreateAccounts, AccountEvents(1, 1), &head, {.ordering_key = 1});
  std::optional<pool::OutgoingMessage> first = Take();
  ASSERT_TRUE(first.has_value());
  // 5,000 calls wait behind the in-flight head of their key; unkeyed calls behind them go.
  std::deque<Answer> held(5000);
  for (Answer& answer : held) Submit(kCreateAccounts, AccountEvents(1, 2), &answer, {.ordering_key = 1});
  Answer free_a, free_b;
  Submit(kCreateAccounts, AccountEvents(1, 3), &free_a);
  Submit(kCreateAccounts, AccountEvents(1, 4), &free_b);
  std::optional<pool::OutgoingMessage> second = Take();
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->body, EncodeBatches(128, {AccountEvents(1, 3)}));
  // The scan stops once a message has a batch and thousands of calls were passed over.
  std::optional<pool::OutgoingMessage> third = Take();
  ASSERT_TRUE(third.has_value());
  EXPECT_EQ(third->body, EncodeBatches(128, {AccountEvents(1, 4)}));
  ReplyDense(*first, 1);
  std::optional<pool::OutgoingMessage> fourth = Take();
  ASSERT_TRUE(fourth.has_value());
  absl::StatusOr<MultiBatchView> batches = DecodeMultiBatch(fourth->body, 128);
  ASSERT_TRUE(batches.ok());
  EXPECT_EQ(batches->size(), 5000u);  // The whole key's chain in order, in one message.
}

TEST_F(CoalescerTest, AMalformedReplyFailsEveryCallerOfTheMessage) {
  Answer a, b;
  Submit(kCreateAccounts, AccountEvents(1), &a);
  Submit(kCreateAccounts, AccountEvents(2, 5), &b);
  std::optional<pool::OutgoingMessage> message = Take();
  ASSERT_TRUE(message.has_value());
  // One batch answered where two were sent.
  std::move(message->on_done)(Reply(1, EncodeBatches(16, {std::vector<uint8_t>(16, 0)})));
  for (Answer* answer : {&a, &b}) {
    EXPECT_EQ(answer->code(), absl::StatusCode::kInternal);
    EXPECT_EQ(answer->outcome(), Outcome::kUnknown);
  }
  EXPECT_EQ(coalescer_->counts().in_flight_messages, 0u);
}

TEST_F(CoalescerTest, AGarbageReplyNeverCrashes) {
  uint64_t state = 12345;
  for (int round = 0; round < 200; round++) {
    Answer a, b;
    Submit(kLookupAccounts, Ids(std::vector<uint64_t>{1, 2}), &a);
    Submit(kLookupAccounts, Ids(std::vector<uint64_t>{3}), &b);
    std::optional<pool::OutgoingMessage> message = Take();
    ASSERT_TRUE(message.has_value());
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    std::vector<uint8_t> body((state >> 40) % 600, 0xFF);
    for (uint8_t& byte : body) {
      state = state * 6364136223846793005ull + 1442695040888963407ull;
      if ((state >> 61) == 0) byte = static_cast<uint8_t>(state >> 50);
    }
    std::move(message->on_done)(Reply(1, body));
    ASSERT_EQ(a.count(), 1);
    ASSERT_EQ(b.count(), 1);
    EXPECT_EQ(a.ok(), b.ok());
    if (a.ok()) {
      EXPECT_LE((*a.result())->results.size(), 2u * 128);
      EXPECT_LE((*b.result())->results.size(), 1u * 128);
    }
  }
}

TEST_F(CoalescerTest, SessionErrorsReachEveryCallerOfTheMessage) {
  Answer a, b;
  Submit(kCreateAccounts, AccountEvents(1), &a);
  Submit(kCreateAccounts, AccountEvents(1, 2), &b);
  std::optional<pool::OutgoingMessage> message = Take();
  ASSERT_TRUE(message.has_value());
  std::move(message->on_done)(
      WithOutcome(absl::AbortedError("session evicted: invalid_request_body"), Outcome::kUnknown));
  for (Answer* answer : {&a, &b}) {
    EXPECT_EQ(answer->code(), absl::StatusCode::kAborted);
    EXPECT_EQ(answer->outcome(), Outcome::kUnknown);
  }
}

TEST_F(CoalescerTest, AnErrorWithoutOutcomeIsReportedAsUnknown) {
  Answer a;
  Submit(kCreateAccounts, AccountEvents(1), &a);
  std::optional<pool::OutgoingMessage> message = Take();
  ASSERT_TRUE(message.has_value());
  std::move(message->on_done)(absl::UnavailableError("connection lost"));
  EXPECT_EQ(a.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(a.outcome(), Outcome::kUnknown);
}

TEST_F(CoalescerTest, CloseRefusesNewCallsAndDrainsTheRest) {
  Answer queued, in_flight, late, unsent;
  Submit(kCreateAccounts, AccountEvents(1), &in_flight);
  std::optional<pool::OutgoingMessage> message = Take();
  ASSERT_TRUE(message.has_value());
  Submit(kCreateAccounts, AccountEvents(1, 2), &queued);
  Submit(kLookupAccounts, Ids(std::vector<uint64_t>{1}), &unsent);
  coalescer_->Close();
  Submit(kCreateAccounts, AccountEvents(1, 3), &late);
  EXPECT_EQ(late.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(late.outcome(), Outcome::kNotApplied);
  // Queued calls still go out until told otherwise.
  std::optional<pool::OutgoingMessage> drained = Take();
  ASSERT_TRUE(drained.has_value());
  EXPECT_EQ(drained->body, EncodeBatches(128, {AccountEvents(1, 2)}));
  coalescer_->FailQueued();
  EXPECT_EQ(unsent.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(unsent.outcome(), Outcome::kNotApplied);
  EXPECT_FALSE(coalescer_->drained());
  EXPECT_FALSE(coalescer_->AwaitDrained(absl::Now()));  // Two messages are still in flight.
  ReplyDense(*message, 1);
  ReplyDense(*drained, 2);
  EXPECT_TRUE(in_flight.ok());
  EXPECT_TRUE(queued.ok());
  EXPECT_TRUE(coalescer_->drained());
  EXPECT_TRUE(coalescer_->AwaitDrained(absl::InfinitePast()));
}

TEST_F(CoalescerTest, DestructionAnswersEveryoneStillWaiting) {
  Answer queued, in_flight;
  Submit(kCreateAccounts, AccountEvents(1), &in_flight);
  std::optional<pool::OutgoingMessage> message = Take();
  ASSERT_TRUE(message.has_value());
  Submit(kCreateAccounts, AccountEvents(1, 2), &queued);
  message.reset();  // The pool is gone first, as documented.
  coalescer_.reset();
  EXPECT_EQ(queued.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(queued.outcome(), Outcome::kNotApplied);
  EXPECT_EQ(in_flight.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(in_flight.outcome(), Outcome::kUnknown);
}

TEST_F(CoalescerTest, RefusesATakeWithAnImpossibleLimit) {
  Answer a;
  Submit(kCreateAccounts, AccountEvents(1), &a);
  EXPECT_FALSE(Take(0).has_value());
  EXPECT_FALSE(Take(100).has_value());
  EXPECT_EQ(a.count(), 0);
  EXPECT_FALSE(Take(kBatchSizeLimitMax + 1).has_value());
  EXPECT_TRUE(Take().has_value());
}

}  // namespace
}  // namespace tb::proxy
