#include "devcluster/prepare_pipeline.h"

#include <chrono>
#include <vector>

#include "client_core/replica/testing/test_client.h"
#include "gtest/gtest.h"

namespace tb::devcluster {
namespace {

using replica::testing::TestClient;
using Clock = PreparePipeline::Clock;
using std::chrono::milliseconds;

constexpr uint8_t kCreateAccounts = 146;

PipelineOptions Options(int latency_ms, uint32_t prepares_max, uint32_t requests_queued_max) {
  return PipelineOptions{.prepare_latency = absl::Milliseconds(latency_ms),
                         .prepares_max = prepares_max,
                         .requests_queued_max = requests_queued_max};
}

PreparePipeline::Request RequestOf(u128 client) {
  return {.connection = static_cast<replica::ConnectionId>(client), .client = client, .message = {}};
}

// The reply held for a prepare: one send to the client's connection, recognisable by it.
PreparePipeline::Sends SendsOf(u128 client) {
  PreparePipeline::Sends sends;
  sends.push_back({.connection = static_cast<replica::ConnectionId>(client), .message = nullptr});
  return sends;
}

// Admits every request that NextToAdmit() yields at `now`; returns their clients in order.
std::vector<u128> AdmitAll(PreparePipeline& pipeline, Clock::time_point now) {
  std::vector<u128> admitted;
  while (std::optional<PreparePipeline::Request> request = pipeline.NextToAdmit()) {
    admitted.push_back(request->client);
    pipeline.Admitted(request->client, now, SendsOf(request->client));
  }
  return admitted;
}

TEST(PipelinedClient, OnlyRequestsAPrimaryWouldPrepare) {
  replica::SessionTable sessions(8);
  TestClient client(7);
  const std::vector<uint8_t> body(128, 0);
  EXPECT_EQ(PipelinedClient(client.Register(), sessions), std::optional<u128>(7));
  // An unknown client's request is evicted at once, a ping is answered at once.
  EXPECT_EQ(PipelinedClient(client.Request(kCreateAccounts, body), sessions), std::nullopt);
  EXPECT_EQ(PipelinedClient(client.Ping(), sessions), std::nullopt);
  sessions.Add(replica::Session{.client = 7, .session = 1, .last_op = 1, .request = 0});
  // A known client: its register again is a duplicate; request 1 is new.
  EXPECT_EQ(PipelinedClient(client.Register(), sessions), std::nullopt);
  const std::vector<uint8_t> request = client.Request(kCreateAccounts, body);
  EXPECT_EQ(PipelinedClient(request, sessions), std::optional<u128>(7));
  sessions.Find(7)->request = 1;  // Committed: now a duplicate, answered at once.
  EXPECT_EQ(PipelinedClient(request, sessions), std::nullopt);
  EXPECT_EQ(RequestClient(request), std::optional<u128>(7));
  EXPECT_EQ(RequestClient(client.Ping()), std::nullopt);
  // Too short to be a request.
  EXPECT_EQ(PipelinedClient(std::span<const uint8_t>(request).first(100), sessions), std::nullopt);
}

TEST(PreparePipeline, AdmitsAtMostPreparesMaxInArrivalOrderAndCommitsInOpOrder) {
  PreparePipeline pipeline(Options(10, /*prepares_max=*/2, /*requests_queued_max=*/2));
  const Clock::time_point start = Clock::now();
  for (u128 client = 1; client <= 4; client++) ASSERT_TRUE(pipeline.Enqueue(RequestOf(client)));
  EXPECT_EQ(AdmitAll(pipeline, start), (std::vector<u128>{1, 2}));
  EXPECT_EQ(pipeline.prepares(), 2u);
  EXPECT_EQ(pipeline.queued(), 2u);
  EXPECT_EQ(pipeline.NextCommit(), start + milliseconds(10));
  // Nothing commits before its latency; then the oldest first, one slot at a time.
  EXPECT_EQ(pipeline.PopCommitted(start + milliseconds(9)), std::nullopt);
  std::optional<PreparePipeline::Sends> first = pipeline.PopCommitted(start + milliseconds(10));
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->at(0).connection, 1u);
  EXPECT_FALSE(pipeline.Holds(1));
  EXPECT_EQ(AdmitAll(pipeline, start + milliseconds(10)), (std::vector<u128>{3}));
  std::optional<PreparePipeline::Sends> second = pipeline.PopCommitted(start + milliseconds(30));
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->at(0).connection, 2u);
  EXPECT_EQ(AdmitAll(pipeline, start + milliseconds(30)), (std::vector<u128>{4}));
  EXPECT_EQ(pipeline.prepares_max_seen(), 2u);
}

TEST(PreparePipeline, AYoungerPrepareNeverCommitsBeforeAnOlderOne) {
  PreparePipeline pipeline(Options(100, 2, 0));
  const Clock::time_point start = Clock::now();
  ASSERT_TRUE(pipeline.Enqueue(RequestOf(1)));
  AdmitAll(pipeline, start);
  // The latency drops at run time: the younger prepare is due at once, the older one as well.
  pipeline.SetOptions(Options(1, 2, 0));
  ASSERT_TRUE(pipeline.Enqueue(RequestOf(2)));
  AdmitAll(pipeline, start + milliseconds(50));
  EXPECT_EQ(pipeline.NextCommit(), start + milliseconds(1));
  std::optional<PreparePipeline::Sends> first = pipeline.PopCommitted(start + milliseconds(60));
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->at(0).connection, 1u);
}

TEST(PreparePipeline, RefusesBeyondTheRequestQueueAndHoldsEachClientOnce) {
  PreparePipeline pipeline(Options(10, 1, 1));
  ASSERT_TRUE(pipeline.Enqueue(RequestOf(1)));
  EXPECT_TRUE(pipeline.Holds(1));
  ASSERT_TRUE(pipeline.Enqueue(RequestOf(2)));  // Slot 1 is free until admission: 2 fit.
  EXPECT_FALSE(pipeline.Enqueue(RequestOf(3)));
  EXPECT_FALSE(pipeline.Holds(3));
  AdmitAll(pipeline, Clock::now());
  EXPECT_EQ(pipeline.queued(), 1u);
  EXPECT_FALSE(pipeline.Enqueue(RequestOf(3)));  // One preparing, one queued: full.
}

TEST(PreparePipeline, AnAbandonedRequestUsesNoSlot) {
  PreparePipeline pipeline(Options(10, 1, 4));
  ASSERT_TRUE(pipeline.Enqueue(RequestOf(1)));
  ASSERT_TRUE(pipeline.Enqueue(RequestOf(2)));
  std::optional<PreparePipeline::Request> request = pipeline.NextToAdmit();
  ASSERT_TRUE(request.has_value());
  pipeline.Abandon(request->client);
  EXPECT_FALSE(pipeline.Holds(1));
  EXPECT_EQ(AdmitAll(pipeline, Clock::now()), (std::vector<u128>{2}));
}

TEST(PreparePipeline, IsActiveWhileOnOrNotEmpty) {
  PreparePipeline pipeline(Options(0, 1, 1));
  EXPECT_FALSE(pipeline.active());
  pipeline.SetOptions(Options(5, 1, 1));
  EXPECT_TRUE(pipeline.active());
  ASSERT_TRUE(pipeline.Enqueue(RequestOf(1)));
  pipeline.SetOptions(Options(0, 1, 1));
  EXPECT_TRUE(pipeline.active());  // Drains in order before requests bypass it again.
  pipeline.Clear();
  EXPECT_FALSE(pipeline.active());
}

TEST(PipelineOptions, BadValuesAreRefusedWithTheField) {
  EXPECT_TRUE(ValidatePipelineOptions({}).ok());
  EXPECT_EQ(PipelineOptions{}.prepares_max, 8u);  // TigerBeetle 0.17.x.
  const absl::Status negative = ValidatePipelineOptions(
      {.prepare_latency = absl::Milliseconds(-1)});
  EXPECT_EQ(negative.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(negative.message().find("prepare_latency"), absl::string_view::npos);
  EXPECT_FALSE(ValidatePipelineOptions({.prepare_latency = absl::Minutes(2)}).ok());
  const absl::Status zero = ValidatePipelineOptions({.prepares_max = 0});
  EXPECT_NE(zero.message().find("prepares_max"), absl::string_view::npos);
  EXPECT_FALSE(ValidatePipelineOptions({.prepares_max = kPipelinePreparesMaxCeiling + 1}).ok());
  const absl::Status queue =
      ValidatePipelineOptions({.requests_queued_max = kPipelineRequestsQueuedMaxCeiling + 1});
  EXPECT_NE(queue.message().find("requests_queued_max"), absl::string_view::npos);
  // Through the server's own validation too.
  ServerOptions options;
  options.faults.pipeline.prepares_max = 0;
  EXPECT_FALSE(ValidateServerOptions(options).ok());
}

}  // namespace
}  // namespace tb::devcluster
