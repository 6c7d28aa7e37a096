#include <cstring>
#include <map>
#include <string>
#include <thread>

#include "absl/time/clock.h"
#include "client_core/outcome.h"
#include "client_core/types.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proxy/grpc/call_memory.h"
#include "proxy/grpc/grpc_service.h"
#include "proxy/testing/grpc_message_util.h"
#include "proxy/testing/grpc_test_server.h"

namespace tb::proxy {
namespace {

namespace v1 = ::tbproxy::v1;
using testing::TestServer;
using ::testing::HasSubstr;

absl::StatusOr<SubmitResult> EchoAnswer(const SubmitRequest& request) {
  // Results = the events themselves, so a response shows which request it answers.
  return SubmitResult{.timestamp = request.operation, .results = request.events};
}

using testing::ClientStream;
using testing::OutcomeMetadata;
using testing::RawLookupCall;
using testing::ReadResponses;

TEST(GrpcStream, PipelinedCallsAreAnsweredByCorrelationId) {
  TestServer server;
  server.submitter.set_answer(EchoAnswer);
  auto stub = server.NewStub();
  grpc::ClientContext context;
  std::unique_ptr<ClientStream> stream = stub->Stream(&context);
  for (uint64_t id = 1; id <= 10; ++id) {
    ASSERT_TRUE(stream->Write(RawLookupCall(id, static_cast<uint8_t>(id * 3))));
  }
  v1::StreamRequest typed;
  typed.set_correlation_id(11);
  v1::Account* account = typed.mutable_create_accounts()->add_accounts();
  account->mutable_id()->set_lo(5);
  ASSERT_TRUE(stream->Write(typed));
  ASSERT_TRUE(stream->WritesDone());
  std::map<uint64_t, v1::StreamResponse> responses = ReadResponses(stream.get(), 11);
  ASSERT_EQ(responses.size(), 11u);
  for (uint64_t id = 1; id <= 10; ++id) {
    ASSERT_TRUE(responses[id].has_raw()) << id;
    EXPECT_EQ(static_cast<uint8_t>(responses[id].raw().results()[0]), id * 3);
    EXPECT_EQ(responses[id].raw().timestamp(), 140u);
  }
  // The echo is an Account, not a CreateResult: 128 bytes = 8 create results.
  ASSERT_TRUE(responses[11].has_create_accounts());
  EXPECT_EQ(responses[11].create_accounts().results_size(), 8);
  EXPECT_TRUE(stream->Finish().ok());

  // One stream is one ordering key; the keys of two streams differ.
  const auto calls = server.submitter.calls();
  ASSERT_EQ(calls.size(), 11u);
  for (const auto& call : calls) EXPECT_EQ(call.options.ordering_key, calls[0].options.ordering_key);
  EXPECT_NE(calls[0].options.ordering_key & kStreamOrderingKeyTag, 0u);
  // Submitted in the order they were written.
  for (size_t i = 0; i < 10; ++i) EXPECT_EQ(calls[i].request.events[0], (i + 1) * 3);

  grpc::ClientContext second_context;
  auto second = stub->Stream(&second_context);
  ASSERT_TRUE(second->Write(RawLookupCall(1, 1)));
  ASSERT_TRUE(second->WritesDone());
  ReadResponses(second.get(), 1);
  EXPECT_TRUE(second->Finish().ok());
  EXPECT_NE(server.submitter.calls().back().options.ordering_key, calls[0].options.ordering_key);
}

TEST(GrpcStream, CallsReachTheSubmitterInTheOrderTheyWereSent) {
  // Answers come back inline, so writes complete (on gRPC's threads) while later requests are
  // being read: the next read must still wait until the previous call is submitted.
  TestServer server({.stream_calls_max = 16});
  server.submitter.set_answer(EchoAnswer);
  auto stub = server.NewStub();
  grpc::ClientContext context;
  auto stream = stub->Stream(&context);
  constexpr uint32_t kCalls = 3000;
  std::thread writer([&] {
    for (uint32_t id = 0; id < kCalls; ++id) {
      if (!stream->Write(RawLookupCall(id, id))) break;
    }
    stream->WritesDone();
  });
  EXPECT_EQ(ReadResponses(stream.get(), kCalls).size(), kCalls);
  writer.join();
  EXPECT_TRUE(stream->Finish().ok());
  const auto calls = server.submitter.calls();
  ASSERT_EQ(calls.size(), kCalls);
  for (uint32_t id = 0; id < kCalls; ++id) {
    uint32_t submitted;
    std::memcpy(&submitted, calls[id].request.events.data(), sizeof(submitted));
    ASSERT_EQ(submitted, id) << "call " << id << " was overtaken";
  }
}

TEST(GrpcStream, OrderingNoneUsesNoKey) {
  TestServer server;
  server.submitter.set_answer(EchoAnswer);
  auto stub = server.NewStub();
  grpc::ClientContext context;
  context.AddMetadata(kOrderingMetadataKey, "none");
  auto stream = stub->Stream(&context);
  ASSERT_TRUE(stream->Write(RawLookupCall(1, 1)));
  ASSERT_TRUE(stream->WritesDone());
  ReadResponses(stream.get(), 1);
  EXPECT_TRUE(stream->Finish().ok());
  EXPECT_EQ(server.submitter.calls().at(0).options.ordering_key, 0u);

  grpc::ClientContext bad_context;
  bad_context.AddMetadata(kOrderingMetadataKey, "sometimes");
  auto bad = stub->Stream(&bad_context);
  v1::StreamResponse response;
  EXPECT_FALSE(bad->Read(&response));
  EXPECT_EQ(bad->Finish().error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST(GrpcStream, BadCallsFailAloneAndTheStreamGoesOn) {
  TestServer server;
  server.submitter.set_answer([](const SubmitRequest& request) -> absl::StatusOr<SubmitResult> {
    if (request.events[0] == 9) {
      return WithOutcome(absl::UnavailableError("no session"), Outcome::kNotApplied);
    }
    return EchoAnswer(request);
  });
  auto stub = server.NewStub();
  grpc::ClientContext context;
  auto stream = stub->Stream(&context);
  v1::StreamRequest empty;
  empty.set_correlation_id(1);
  ASSERT_TRUE(stream->Write(empty));
  v1::StreamRequest blocked = RawLookupCall(2, 1);
  blocked.mutable_raw()->set_operation(128);
  ASSERT_TRUE(stream->Write(blocked));
  ASSERT_TRUE(stream->Write(RawLookupCall(3, 9)));
  ASSERT_TRUE(stream->Write(RawLookupCall(4, 4)));
  ASSERT_TRUE(stream->WritesDone());
  auto responses = ReadResponses(stream.get(), 4);
  ASSERT_EQ(responses.size(), 4u);
  EXPECT_EQ(responses[1].error().code(), static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
  EXPECT_EQ(responses[2].error().code(), static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
  EXPECT_THAT(responses[2].error().message(), HasSubstr("operation"));
  EXPECT_EQ(responses[2].error().outcome(), v1::OUTCOME_UNSPECIFIED);
  EXPECT_EQ(responses[3].error().code(), static_cast<int>(grpc::StatusCode::UNAVAILABLE));
  EXPECT_EQ(responses[3].error().outcome(), v1::OUTCOME_NOT_APPLIED);
  EXPECT_TRUE(responses[4].has_raw());
  EXPECT_TRUE(stream->Finish().ok());
}

TEST(GrpcStream, ACallThatDoesNotFitTheCallMemoryIsAnsweredResourceExhaustedUntilOneIsWritten) {
  const uint64_t one_call = CallMemoryBound(140, std::vector<uint8_t>(16), CallKind::kStream);
  TestServer server({.call_memory_max = 2 * one_call});
  server.submitter.set_hold(true);
  auto stub = server.NewStub();
  grpc::ClientContext context;
  auto stream = stub->Stream(&context);
  for (uint64_t id = 1; id <= 3; ++id) ASSERT_TRUE(stream->Write(RawLookupCall(id, id)));
  // Calls 1 and 2 hold the memory; call 3 does not fit and is answered at once, not submitted.
  std::map<uint64_t, v1::StreamResponse> responses = ReadResponses(stream.get(), 1);
  ASSERT_EQ(responses.count(3), 1u);
  EXPECT_EQ(responses[3].error().code(), static_cast<int>(grpc::StatusCode::RESOURCE_EXHAUSTED));
  EXPECT_EQ(responses[3].error().outcome(), v1::OUTCOME_NOT_APPLIED);
  EXPECT_THAT(responses[3].error().message(), HasSubstr("--grpc-call-memory-max"));
  server.submitter.WaitForPending(2);
  EXPECT_EQ(server.submitter.calls().size(), 2u);
  EXPECT_EQ(server.service.call_memory().reserved(), 2 * one_call);

  // Call 1 answered and written: its memory is back, and the next call fits.
  server.submitter.ReleaseOldest(EchoAnswer);
  responses = ReadResponses(stream.get(), 1);
  ASSERT_TRUE(responses[1].has_raw());
  const absl::Time give_up = absl::Now() + absl::Seconds(10);
  while (server.service.call_memory().reserved() != one_call && absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  EXPECT_EQ(server.service.call_memory().reserved(), one_call);
  ASSERT_TRUE(stream->Write(RawLookupCall(4, 4)));
  server.submitter.WaitForPending(2);
  server.submitter.ReleaseOldest(EchoAnswer);
  server.submitter.ReleaseOldest(EchoAnswer);
  ASSERT_TRUE(stream->WritesDone());
  responses = ReadResponses(stream.get());
  EXPECT_TRUE(responses[2].has_raw());
  EXPECT_TRUE(responses[4].has_raw());
  EXPECT_TRUE(stream->Finish().ok());
  EXPECT_EQ(server.service.call_memory().reserved(), 0u);
}

TEST(GrpcStream, AnAnsweredCallKeepsItsMemoryUntilTheClientHasReadItsResponse) {
  // Call 1's response (1 MiB, the echo of 8,189 transfers) is more than the client's flow
  // control window lets through until it reads; call 2 comes in meanwhile.
  v1::StreamRequest big;
  big.set_correlation_id(1);
  big.mutable_raw()->set_operation(147);
  big.mutable_raw()->set_events(std::string(8189 * 128, '\x01'));
  const std::string& big_events = big.raw().events();
  const uint64_t big_bound = CallMemoryBound(
      147, {reinterpret_cast<const uint8_t*>(big_events.data()), big_events.size()},
      CallKind::kStream);
  const uint64_t small_bound = CallMemoryBound(140, std::vector<uint8_t>(16), CallKind::kStream);
  TestServer server({.call_memory_max = big_bound + small_bound - 1});
  server.submitter.set_answer(EchoAnswer);
  // A client window that stays small until the client reads (no BDP probes to widen it).
  grpc::ChannelArguments small_window;
  small_window.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  small_window.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 64 * 1024);
  auto stub = server.NewStub(grpc::InsecureChannelCredentials(), small_window);
  grpc::ClientContext context;
  auto stream = stub->Stream(&context);
  ASSERT_TRUE(stream->Write(big));
  ASSERT_TRUE(stream->Write(RawLookupCall(2, 2)));
  ASSERT_TRUE(stream->WritesDone());
  // Read nothing until tbproxy has taken call 2 one way or the other: reading would let call 1's
  // response out.
  const absl::Time give_up = absl::Now() + absl::Seconds(10);
  while (server.submitter.calls().size() < 2 && server.submitter.refusals().empty() &&
         absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  EXPECT_EQ(server.submitter.calls().size(), 1u)
      << "call 1's unread response must still hold its memory when call 2 arrives";
  EXPECT_EQ(server.submitter.refusals().size(), 1u);
  std::map<uint64_t, v1::StreamResponse> responses = ReadResponses(stream.get());
  ASSERT_EQ(responses.size(), 2u);
  EXPECT_EQ(responses[1].raw().results().size(), big_events.size());
  EXPECT_EQ(responses[2].error().code(), static_cast<int>(grpc::StatusCode::RESOURCE_EXHAUSTED));
  EXPECT_TRUE(stream->Finish().ok());
  EXPECT_EQ(server.service.call_memory().reserved(), 0u);
}

TEST(GrpcStream, CallsInFlightAreCappedAndCompleteOutOfOrder) {
  TestServer server({.stream_calls_max = 2});
  server.submitter.set_hold(true);
  auto stub = server.NewStub();
  grpc::ClientContext context;
  auto stream = stub->Stream(&context);
  for (uint64_t id = 1; id <= 6; ++id) ASSERT_TRUE(stream->Write(RawLookupCall(id, id)));
  ASSERT_TRUE(stream->WritesDone());
  std::map<uint64_t, v1::StreamResponse> responses;
  for (int round = 0; round < 3; ++round) {
    server.submitter.WaitForPending(2);
    server.submitter.ReleaseNewest(EchoAnswer);  // Out of order: the later call first.
    server.submitter.ReleaseOldest(EchoAnswer);
    for (auto& [id, response] : ReadResponses(stream.get(), 2)) responses[id] = response;
  }
  EXPECT_EQ(responses.size(), 6u);
  for (uint64_t id = 1; id <= 6; ++id) {
    EXPECT_EQ(static_cast<uint8_t>(responses[id].raw().results()[0]), id);
  }
  EXPECT_TRUE(stream->Finish().ok());
  EXPECT_EQ(server.submitter.pending_max(), 2u);
}

TEST(GrpcStream, AnswersQueuedTogetherAllReachAnOpenStream) {
  // Many answers at once queue up behind one write; they go out as buffered runs. The stream
  // stays open (no WritesDone) while reading, so a run that was never flushed would hang here.
  // 2.4 MB of responses in all: more than gRPC's write buffer.
  constexpr uint64_t kCalls = 300;
  constexpr size_t kIdsPerCall = 500;
  TestServer server({.stream_calls_max = kCalls});
  server.submitter.set_hold(true);
  auto stub = server.NewStub();
  grpc::ClientContext context;
  auto stream = stub->Stream(&context);
  for (uint64_t id = 1; id <= kCalls; ++id) {
    v1::StreamRequest request = RawLookupCall(id, static_cast<uint8_t>(id));
    std::string ids(16 * kIdsPerCall, static_cast<char>(id));
    request.mutable_raw()->set_events(ids);
    ASSERT_TRUE(stream->Write(request));
  }
  server.submitter.WaitForPending(kCalls);
  for (uint64_t i = 0; i < kCalls; ++i) server.submitter.ReleaseOldest(EchoAnswer);
  std::map<uint64_t, v1::StreamResponse> responses = ReadResponses(stream.get(), kCalls);
  ASSERT_EQ(responses.size(), kCalls);
  for (uint64_t id = 1; id <= kCalls; ++id) {
    const std::string& results = responses[id].raw().results();
    ASSERT_EQ(results.size(), 16 * kIdsPerCall) << id;
    EXPECT_EQ(results, std::string(16 * kIdsPerCall, static_cast<char>(id))) << id;
  }
  ASSERT_TRUE(stream->WritesDone());
  EXPECT_TRUE(stream->Finish().ok());
}

// Opens a stream and completes one call on it, so the server has certainly opened it.
std::unique_ptr<ClientStream> OpenAnsweredStream(v1::TigerBeetle::Stub& stub,
                                                 grpc::ClientContext* context) {
  std::unique_ptr<ClientStream> stream = stub.Stream(context);
  EXPECT_TRUE(stream->Write(RawLookupCall(1, 1)));
  EXPECT_EQ(ReadResponses(stream.get(), 1).size(), 1u);
  return stream;
}

// The service gives a stream's place back on its own thread after the client may have seen the
// end (a cancel); waits for that rather than racing it.
bool WaitForOpenStreams(const GrpcService& service, uint32_t open) {
  const absl::Time give_up = absl::Now() + absl::Seconds(10);
  while (service.stream_rpcs().open() != open) {
    if (absl::Now() > give_up) return false;
    absl::SleepFor(absl::Milliseconds(1));
  }
  return true;
}

TEST(GrpcStream, StreamsPastTheBoundAreRefusedNotAppliedUntilOneCloses) {
  TestServer server({.stream_rpcs_max = 2});
  server.submitter.set_answer(EchoAnswer);
  auto stub = server.NewStub();
  grpc::ClientContext first_context;
  grpc::ClientContext second_context;
  auto first = OpenAnsweredStream(*stub, &first_context);
  auto second = OpenAnsweredStream(*stub, &second_context);
  EXPECT_EQ(server.service.stream_rpcs().open(), 2u);

  grpc::ClientContext refused_context;
  auto refused = stub->Stream(&refused_context);
  refused->Write(RawLookupCall(7, 7));  // May fail: the stream may be finished already.
  const grpc::Status status = refused->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << status.error_message();
  EXPECT_THAT(status.error_message(), HasSubstr("--stream-rpcs-max"));
  EXPECT_EQ(OutcomeMetadata(refused_context), "not_applied");
  EXPECT_EQ(server.service.stream_rpcs().refused(), 1u);
  EXPECT_EQ(server.submitter.calls().size(), 2u);  // The refused stream's call never went out.

  // A stream that closed gave its place back before its client saw the status.
  ASSERT_TRUE(first->WritesDone());
  EXPECT_TRUE(first->Finish().ok());
  EXPECT_EQ(server.service.stream_rpcs().open(), 1u);
  grpc::ClientContext third_context;
  auto third = OpenAnsweredStream(*stub, &third_context);
  EXPECT_EQ(server.service.stream_rpcs().open(), 2u);
  for (ClientStream* stream : {second.get(), third.get()}) {
    ASSERT_TRUE(stream->WritesDone());
    EXPECT_TRUE(stream->Finish().ok());
  }
  EXPECT_EQ(server.service.stream_rpcs().open(), 0u);
}

TEST(GrpcStream, ACancelledStreamGivesItsPlaceBack) {
  TestServer server({.stream_rpcs_max = 1});
  server.submitter.set_answer(EchoAnswer);
  auto stub = server.NewStub();
  grpc::ClientContext context;
  auto stream = OpenAnsweredStream(*stub, &context);
  context.TryCancel();
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::CANCELLED);
  ASSERT_TRUE(WaitForOpenStreams(server.service, 0));
  grpc::ClientContext next_context;
  auto next = OpenAnsweredStream(*stub, &next_context);
  ASSERT_TRUE(next->WritesDone());
  EXPECT_TRUE(next->Finish().ok());
  EXPECT_EQ(server.service.stream_rpcs().refused(), 0u);
}

TEST(GrpcStream, AStreamRefusedForItsMetadataTakesNoPlace) {
  TestServer server({.stream_rpcs_max = 1});
  auto stub = server.NewStub();
  grpc::ClientContext bad_context;
  bad_context.AddMetadata(kOrderingMetadataKey, "sometimes");
  auto bad = stub->Stream(&bad_context);
  EXPECT_EQ(bad->Finish().error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(server.service.stream_rpcs().open(), 0u);
  EXPECT_EQ(server.service.stream_rpcs().refused(), 0u);
}

TEST(GrpcStream, ADrainedStreamGivesItsPlaceBack) {
  TestServer server({.stream_rpcs_max = 1});
  server.submitter.set_answer(EchoAnswer);
  auto stub = server.NewStub();
  grpc::ClientContext context;
  auto stream = OpenAnsweredStream(*stub, &context);
  server.service.drain().Begin();
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(server.service.stream_rpcs().open(), 0u);
}

TEST(GrpcStream, CancelledStreamWaitsForItsCallsThenEnds) {
  TestServer server;
  server.submitter.set_hold(true);
  auto stub = server.NewStub();
  grpc::ClientContext context;
  auto stream = stub->Stream(&context);
  ASSERT_TRUE(stream->Write(RawLookupCall(1, 1)));
  server.submitter.WaitForPending(1);
  context.TryCancel();
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::CANCELLED);
  // The reactor is still waiting for this answer; it must take it and end cleanly.
  server.submitter.ReleaseOldest(EchoAnswer);
}

}  // namespace
}  // namespace tb::proxy
