#include "proxy/metrics/metrics_observers.h"

#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "client_core/outcome.h"
#include "client_core/testing/events.h"
#include "client_core/testing/fake_clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proxy/coalescer/coalescer.h"
#include "proxy/log/log.h"
#include "proxy/testing/coalescer_helpers.h"
#include "proxy/testing/metrics_exposition.h"

namespace tb::proxy {
namespace {

using client_core::testing::AccountEvents;
using client_core::testing::FakeClock;
using testing::Answer;
using testing::EncodeBatches;
using ::testing::HasSubstr;
using testing::Reply;
using testing::Sample;
using testing::SamplesAre;

constexpr uint8_t kCreateAccounts = 146;
constexpr uint32_t kCreated = 0xFFFFFFFF;
constexpr uint32_t kExists = 21;

std::vector<uint8_t> CreateResults(const std::vector<uint32_t>& statuses) {
  std::vector<uint8_t> bytes(statuses.size() * sizeof(CreateResult));
  for (size_t i = 0; i < statuses.size(); i++) {
    const CreateResult result{.timestamp = 1000 + i, .status = statuses[i], .reserved = 0};
    std::memcpy(bytes.data() + i * sizeof(result), &result, sizeof(result));
  }
  return bytes;
}

// The coalescer, its observer and the metered submitter wired as main wires them.
class MeteredCoalescerTest : public ::testing::Test {
 protected:
  MeteredCoalescerTest() {
    CoalescerOptions options;
    options.clock = &clock_;
    options.observer = &observer_;
    coalescer_.emplace(std::move(options));
    SampleCoalescerOnScrape(metrics_, *coalescer_);
    submitter_.emplace(*coalescer_, metrics_, Frontend::kGrpc, &clock_);
  }

  Metrics metrics_{{}};
  FakeClock clock_;
  CoalescerMetricsObserver observer_{metrics_};
  std::optional<Coalescer> coalescer_;
  std::optional<MeteredSubmitter> submitter_;
};

TEST_F(MeteredCoalescerTest, MeasuresACallFromSubmitToResults) {
  Answer answer;
  submitter_->Submit({.operation = kCreateAccounts, .events = AccountEvents(3)}, {},
                     answer.Callback());
  std::string text = metrics_.Exposition();
  EXPECT_TRUE(SamplesAre(text, {{"tbproxy_grpc_calls_in_flight", 1},
                                {"tbproxy_queued_events", 3},
                                {"tbproxy_queued_bytes", 3 * 128}}));

  clock_.Advance(absl::Milliseconds(2));
  std::optional<pool::OutgoingMessage> message = coalescer_->TakeMessage(kBatchSizeLimitMax);
  ASSERT_TRUE(message.has_value());
  text = metrics_.Exposition();
  EXPECT_TRUE(SamplesAre(
      text,
      {{"tbproxy_queued_events", 0},
       {R"(tbproxy_message_events_sum{operation="create_accounts"})", 3},
       {R"(tbproxy_message_batches_sum{operation="create_accounts"})", 1},
       {R"(tbproxy_message_fill_ratio_count{operation="create_accounts"})", 1},
       {R"(tbproxy_queue_wait_seconds_bucket{operation="create_accounts",le="0.001"})", 0},
       {R"(tbproxy_queue_wait_seconds_bucket{operation="create_accounts",le="0.0025"})", 1}}));

  clock_.Advance(absl::Milliseconds(5));
  std::move(message->on_done)(
      Reply(9, EncodeBatches(16, {CreateResults({kCreated, kExists, kCreated})})));
  ASSERT_TRUE(answer.ok()) << answer.result()->status();
  text = metrics_.Exposition();
  EXPECT_TRUE(SamplesAre(
      text,
      {{"tbproxy_grpc_calls_in_flight", 0},
       {R"(tbproxy_requests_total{frontend="grpc",operation="create_accounts",outcome="ok"})", 1},
       {R"(tbproxy_events_total{frontend="grpc",operation="create_accounts",outcome="ok"})", 3},
       {R"(tbproxy_results_total{frontend="grpc",operation="create_accounts",status="created"})",
        2},
       {R"(tbproxy_results_total{frontend="grpc",operation="create_accounts",status="exists"})",
        1}}));
  // 7 ms from Submit to results.
  EXPECT_TRUE(SamplesAre(
      text,
      {{R"(tbproxy_request_duration_seconds_bucket{frontend="grpc",operation="create_accounts",le="0.005"})",
        0},
       {R"(tbproxy_request_duration_seconds_bucket{frontend="grpc",operation="create_accounts",le="0.01"})",
        1}}));
}

TEST_F(MeteredCoalescerTest, CountsRefusalsByReasonAndOutcome) {
  Answer invalid;
  submitter_->Submit({.operation = 128, .events = {}}, {}, invalid.Callback());
  ASSERT_EQ(invalid.code(), absl::StatusCode::kInvalidArgument);
  Answer ragged;
  submitter_->Submit({.operation = kCreateAccounts, .events = std::vector<uint8_t>(100)}, {},
                     ragged.Callback());
  ASSERT_EQ(ragged.code(), absl::StatusCode::kInvalidArgument);
  coalescer_->Close();
  Answer closed;
  submitter_->Submit({.operation = kCreateAccounts, .events = AccountEvents(1)}, {},
                     closed.Callback());
  ASSERT_EQ(closed.code(), absl::StatusCode::kUnavailable);

  const std::string text = metrics_.Exposition();
  EXPECT_TRUE(SamplesAre(
      text,
      {{R"(tbproxy_refusals_total{reason="invalid_input"})", 2},
       {R"(tbproxy_refusals_total{reason="closed"})", 1},
       {R"(tbproxy_requests_total{frontend="grpc",operation="unknown",outcome="invalid_argument"})",
        1},
       {R"(tbproxy_requests_total{frontend="grpc",operation="create_accounts",)"
        R"(outcome="invalid_argument"})",
        1},
       {R"(tbproxy_requests_total{frontend="grpc",operation="create_accounts",outcome="unavailable"})",
        1},
       {"tbproxy_grpc_calls_in_flight", 0}}));
}

TEST_F(MeteredCoalescerTest, CountsAMessageLostInFlightAsUnavailable) {
  Answer answer;
  submitter_->Submit({.operation = kCreateAccounts, .events = AccountEvents(2)}, {},
                     answer.Callback());
  std::optional<pool::OutgoingMessage> message = coalescer_->TakeMessage(kBatchSizeLimitMax);
  ASSERT_TRUE(message.has_value());
  std::move(message->on_done)(
      WithOutcome(absl::UnavailableError("session lost"), Outcome::kUnknown));
  ASSERT_EQ(answer.code(), absl::StatusCode::kUnavailable);
  const std::string text = metrics_.Exposition();
  EXPECT_TRUE(SamplesAre(
      text,
      {{R"(tbproxy_events_total{frontend="grpc",operation="create_accounts",outcome="unavailable"})",
        2},
       {R"(tbproxy_results_total{frontend="grpc",operation="create_accounts",status="created"})",
        -1}}));
}

// A submitter that answers inline with what the test prepared.
class FixedSubmitter : public Submitter {
 public:
  void Submit(SubmitRequest request, SubmitOptions options, SubmitCallback callback) override {
    std::move(callback)(answer);
  }
  absl::StatusOr<SubmitResult> answer = SubmitResult{};
};

TEST(MeteredSubmitter, IgnoresResultsThatAreNotWholeCreateResults) {
  Metrics metrics({});
  FixedSubmitter inner;
  inner.answer = SubmitResult{.timestamp = 1, .results = std::vector<uint8_t>(17)};
  MeteredSubmitter submitter(inner, metrics, Frontend::kGrpc);
  Answer answer;
  submitter.Submit({.operation = 147, .events = std::vector<uint8_t>(128)}, {}, answer.Callback());
  ASSERT_TRUE(answer.ok());
  const std::string text = metrics.Exposition();
  EXPECT_EQ(
      Sample(
          text,
          R"(tbproxy_requests_total{frontend="grpc",operation="create_transfers",outcome="ok"})"),
      1);
  EXPECT_THAT(text, ::testing::Not(HasSubstr("tbproxy_results_total{")));
}

TEST(MeteredSubmitter, CountsCallsRefusedBeforeSubmitWithNoEvents) {
  Metrics metrics({});
  FixedSubmitter inner;
  MeteredSubmitter submitter(inner, metrics, Frontend::kGrpc);
  submitter.OnRefusedBeforeSubmit(147, absl::StatusCode::kUnauthenticated);
  submitter.OnRefusedBeforeSubmit(128, absl::StatusCode::kInvalidArgument);
  const std::string text = metrics.Exposition();
  EXPECT_TRUE(SamplesAre(
      text,
      {{R"(tbproxy_requests_total{frontend="grpc",operation="create_transfers",outcome="unauthenticated"})",
        1},
       {R"(tbproxy_events_total{frontend="grpc",operation="create_transfers",outcome="unauthenticated"})",
        0},
       {R"(tbproxy_requests_total{frontend="grpc",operation="unknown",outcome="invalid_argument"})",
        1},
       {"tbproxy_grpc_calls_in_flight", 0}}));
}

TEST(MeteredSubmitter, CountsResultStatusesOnlyForCreates) {
  Metrics metrics({});
  FixedSubmitter inner;
  inner.answer = SubmitResult{.timestamp = 1, .results = CreateResults({kCreated})};
  MeteredSubmitter submitter(inner, metrics, Frontend::kGrpc);
  Answer lookup;
  submitter.Submit({.operation = 140, .events = std::vector<uint8_t>(16)}, {}, lookup.Callback());
  EXPECT_THAT(metrics.Exposition(), ::testing::Not(HasSubstr("tbproxy_results_total{")));
  Answer create;
  submitter.Submit({.operation = 147, .events = std::vector<uint8_t>(128)}, {}, create.Callback());
  EXPECT_EQ(
      Sample(
          metrics.Exposition(),
          R"(tbproxy_results_total{frontend="grpc",operation="create_transfers",status="created"})"),
      1);
}

TEST(MeteredSubmitter, LabelsEachCallWithItsFrontEnd) {
  Metrics metrics({});
  FixedSubmitter inner;
  inner.answer = SubmitResult{.timestamp = 1, .results = CreateResults({kCreated, kCreated})};
  MeteredSubmitter grpc(inner, metrics, Frontend::kGrpc);
  MeteredSubmitter native(inner, metrics, Frontend::kNative);
  Answer from_grpc, from_native;
  grpc.Submit({.operation = 147, .events = std::vector<uint8_t>(256)}, {}, from_grpc.Callback());
  native.Submit({.operation = 147, .events = std::vector<uint8_t>(256)}, {},
                from_native.Callback());
  ASSERT_TRUE(from_grpc.ok());
  ASSERT_TRUE(from_native.ok());
  const std::string text = metrics.Exposition();
  for (const char* frontend : {"grpc", "native"}) {
    const std::string labels =
        absl::StrCat(R"({frontend=")", frontend, R"(",operation="create_transfers",)");
    EXPECT_EQ(Sample(text, absl::StrCat("tbproxy_requests_total", labels, R"(outcome="ok"})")), 1)
        << frontend;
    EXPECT_EQ(Sample(text, absl::StrCat("tbproxy_events_total", labels, R"(outcome="ok"})")), 2)
        << frontend;
    EXPECT_EQ(Sample(text, absl::StrCat("tbproxy_results_total", labels, R"(status="created"})")),
              2)
        << frontend;
  }
}

class PoolMetricsObserverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SetLogSink([this](absl::string_view line) { lines_.emplace_back(line); });
  }
  void TearDown() override { SetLogSink(nullptr); }

  Metrics metrics_{{}};
  PoolMetricsObserver observer_{metrics_};
  std::vector<std::string> lines_;
};

TEST_F(PoolMetricsObserverTest, TracksRegisteredSessionsThroughEvictionsAndLosses) {
  observer_.OnSessionRegistered(1, 1, 1024 * 1024 - 256);
  observer_.OnSessionRegistered(2, 1, 1024 * 1024 - 256);
  observer_.OnSessionRegistered(2, 1, 1024 * 1024 - 256);  // Reported twice: still one session.
  observer_.OnSessionRegistered(3, 1, 1024 * 1024 - 256);
  EXPECT_EQ(Sample(metrics_.Exposition(), "tbproxy_sessions_registered"), 3);
  observer_.OnSessionEvicted(2, EvictionReason::kNoSession);
  observer_.OnSessionReplaced(2, 4);  // Replacing an evicted session.
  observer_.OnSessionReplaced(3, 5);  // Replacing a session lost without an eviction.
  observer_.OnSessionReplaced(9, 6);  // Replacing one that never registered.
  std::string text = metrics_.Exposition();
  EXPECT_TRUE(SamplesAre(text, {{"tbproxy_sessions_registered", 1},
                                {R"(tbproxy_session_evictions_total{reason="no_session"})", 1},
                                {"tbproxy_session_replacements_total", 3}}));
  observer_.OnSessionRegistered(4, 1, 4096);
  EXPECT_EQ(Sample(metrics_.Exposition(), "tbproxy_sessions_registered"), 2);
  observer_.OnPoolFailed(absl::FailedPreconditionError("release too low"));
  text = metrics_.Exposition();
  EXPECT_TRUE(
      SamplesAre(text, {{"tbproxy_sessions_registered", 0}, {"tbproxy_pool_failures_total", 1}}));
}

TEST_F(PoolMetricsObserverTest, CountsResendsViewsRoundTripsAndKeepWarm) {
  observer_.OnRequestResent(1, 5);
  observer_.OnViewChange(1, 4);
  observer_.OnRoundTrip(147, absl::Milliseconds(3));
  observer_.OnKeepWarm(1);
  const std::string text = metrics_.Exposition();
  EXPECT_TRUE(SamplesAre(
      text, {{"tbproxy_request_resends_total", 1},
             {"tbproxy_view_changes_total", 1},
             {"tbproxy_cluster_view", 4},
             {R"(tbproxy_cluster_round_trip_seconds_count{operation="create_transfers"})", 1},
             {"tbproxy_keep_warm_requests_total", 1}}));
}

TEST_F(PoolMetricsObserverTest, CountsResubmissionsByReason) {
  observer_.OnMessageResubmitted(pool::ResubmissionReason::kNoSession, 1);
  observer_.OnMessageResubmitted(pool::ResubmissionReason::kNoSession, 2);
  observer_.OnMessageResubmitted(pool::ResubmissionReason::kSendRefused, 1);
  const std::string text = metrics_.Exposition();
  EXPECT_TRUE(SamplesAre(
      text, {{R"(tbproxy_pool_resubmissions_total{reason="no_session"})", 2},
             {R"(tbproxy_pool_resubmissions_total{reason="send_refused"})", 1},
             {R"(tbproxy_pool_resubmissions_total{reason="session_too_low"})", 0}}));
  ASSERT_EQ(lines_.size(), 3u);
  EXPECT_THAT(lines_[1], HasSubstr("level=info event=message_resubmitted reason=no_session "
                                   "attempts=2"));
}

TEST_F(PoolMetricsObserverTest, CountsAndLogsRetiredStuckSessions) {
  observer_.OnSessionRegistered(0xAB, 1, 4096);
  observer_.OnSessionRegistered(0xCD, 1, 4096);
  observer_.OnSessionRetired(0xAB, absl::Seconds(30));
  const std::string text = metrics_.Exposition();
  EXPECT_TRUE(SamplesAre(text, {{R"(tbproxy_pool_sessions_retired_total{reason="stuck"})", 1},
                                {"tbproxy_sessions_registered", 1}}));
  ASSERT_EQ(lines_.size(), 3u);
  EXPECT_THAT(lines_[2], HasSubstr("level=warning event=session_retired client="));
  EXPECT_THAT(lines_[2], HasSubstr(" reason=stuck silent_for=30s"));
}

TEST_F(PoolMetricsObserverTest, CountsAndLogsStuckSessionsKept) {
  observer_.OnSessionRegistered(0xAB, 1, 4096);
  observer_.OnSessionStuckKept(0xAB, absl::Seconds(31));
  const std::string text = metrics_.Exposition();
  // Kept: still registered, not counted as retired.
  EXPECT_TRUE(SamplesAre(text, {{"tbproxy_pool_sessions_stuck_kept_total", 1},
                                {R"(tbproxy_pool_sessions_retired_total{reason="stuck"})", 0},
                                {"tbproxy_sessions_registered", 1}}));
  ASSERT_EQ(lines_.size(), 2u);
  EXPECT_THAT(lines_[1], HasSubstr("level=warning event=session_stuck_kept client="));
  EXPECT_THAT(lines_[1], HasSubstr(" silent_for=31s"));
  EXPECT_THAT(lines_[1], HasSubstr("--session-budget"));
}

TEST_F(PoolMetricsObserverTest, LogsSessionEventsAsStructuredLines) {
  observer_.OnSessionRegistered(0xAB, 7, 4096);
  observer_.OnSessionEvicted(0xAB, EvictionReason::kSessionTooLow);
  observer_.OnPoolFailed(absl::FailedPreconditionError("client release too low"));
  ASSERT_EQ(lines_.size(), 3u);
  EXPECT_THAT(lines_[0], HasSubstr("level=info event=session_registered client="));
  EXPECT_THAT(lines_[0], HasSubstr(" session=7 batch_size_limit=4096"));
  EXPECT_THAT(lines_[1], HasSubstr("level=warning event=session_evicted client="));
  EXPECT_THAT(lines_[1], HasSubstr(" reason=session_too_low"));
  EXPECT_THAT(lines_[2],
              HasSubstr("level=error event=pool_failed status=\"FAILED_PRECONDITION: client "
                        "release too low\""));
}

}  // namespace
}  // namespace tb::proxy
