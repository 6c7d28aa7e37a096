// The gRPC front end's drain: every call is answered by tbproxy, with outcome not_applied when
// it was refused, and no stream is left open for gRPC's Shutdown to cancel.
#include "proxy/grpc/grpc_drain.h"

#include <future>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proxy/grpc/grpc_status.h"
#include "proxy/testing/grpc_message_util.h"
#include "proxy/testing/grpc_test_server.h"

namespace tb::proxy {
namespace {

namespace v1 = ::tbproxy::v1;
using testing::ClientStream;
using testing::OutcomeMetadata;
using testing::RawLookupCall;
using testing::ReadResponses;
using testing::SetU128;
using testing::TestServer;
using ::testing::HasSubstr;

absl::StatusOr<SubmitResult> EchoAnswer(const SubmitRequest& request) {
  return SubmitResult{.timestamp = request.operation, .results = request.events};
}

void ExpectDrainingRefusal(const grpc::Status& status, const grpc::ClientContext& context) {
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  EXPECT_THAT(status.error_message(), HasSubstr("draining"));
  EXPECT_EQ(OutcomeMetadata(context), "not_applied");
}

grpc::Status Lookup(v1::TigerBeetle::Stub& stub, grpc::ClientContext* context) {
  v1::LookupAccountsRequest request;
  SetU128(request.add_ids(), 0, 1);
  v1::LookupAccountsResponse response;
  return stub.LookupAccounts(context, request, &response);
}

TEST(GrpcDrain, NewCallsAreRefusedNotApplied) {
  TestServer server;
  server.submitter.set_answer(EchoAnswer);
  auto stub = server.NewStub();
  server.service.drain().Begin();
  grpc::ClientContext unary;
  ExpectDrainingRefusal(Lookup(*stub, &unary), unary);

  grpc::ClientContext streaming;
  std::unique_ptr<ClientStream> stream = stub->Stream(&streaming);
  stream->Write(RawLookupCall(1, 1));  // May fail: the stream may be finished already.
  ExpectDrainingRefusal(stream->Finish(), streaming);
  EXPECT_TRUE(server.submitter.calls().empty());
  // The unary call is counted as a call; a refused stream is not one.
  const auto refusals = server.submitter.refusals();
  ASSERT_EQ(refusals.size(), 1u);
  EXPECT_EQ(refusals[0].operation, 140);
  EXPECT_EQ(refusals[0].code, absl::StatusCode::kUnavailable);
}

TEST(GrpcDrain, OpenStreamGetsItsAnswersThenFinishesUnavailable) {
  TestServer server;
  server.submitter.set_hold(true);
  auto stub = server.NewStub();
  grpc::ClientContext context;
  std::unique_ptr<ClientStream> stream = stub->Stream(&context);
  ASSERT_TRUE(stream->Write(RawLookupCall(1, 1)));
  server.submitter.WaitForPending(1);
  // The client never half-closes: without the drain this stream would stay open until gRPC's
  // Shutdown deadline cancelled it.
  server.service.drain().Begin();
  server.submitter.ReleaseOldest(EchoAnswer);
  std::map<uint64_t, v1::StreamResponse> responses = ReadResponses(stream.get(), 1);
  ASSERT_EQ(responses.size(), 1u);
  EXPECT_TRUE(responses[1].has_raw());
  ExpectDrainingRefusal(stream->Finish(), context);
  EXPECT_EQ(server.submitter.calls().size(), 1u);
}

TEST(GrpcDrain, IdleStreamFinishesAtOnce) {
  TestServer server;
  server.submitter.set_answer(EchoAnswer);
  auto stub = server.NewStub();
  grpc::ClientContext context;
  std::unique_ptr<ClientStream> stream = stub->Stream(&context);
  ASSERT_TRUE(stream->Write(RawLookupCall(1, 1)));
  ASSERT_EQ(ReadResponses(stream.get(), 1).size(), 1u);  // Open, idle, with a read waiting.
  server.service.drain().Begin();
  ExpectDrainingRefusal(stream->Finish(), context);
}

TEST(GrpcDrain, HeldCallsAreAnsweredAtRelease) {
  TestServer server;
  server.submitter.set_answer(EchoAnswer);
  auto stub = server.NewStub();
  GrpcDrain& drain = server.service.drain();
  drain.Begin();
  drain.Hold();
  grpc::ClientContext context;
  std::future<grpc::Status> answer =
      std::async(std::launch::async, [&] { return Lookup(*stub, &context); });
  while (drain.held() == 0) absl::SleepFor(absl::Milliseconds(1));
  EXPECT_EQ(answer.wait_for(std::chrono::milliseconds(50)), std::future_status::timeout);
  drain.ReleaseHeld();
  ExpectDrainingRefusal(answer.get(), context);
  EXPECT_EQ(drain.held(), 0u);
  // After the release, calls are refused at once again.
  grpc::ClientContext later;
  ExpectDrainingRefusal(Lookup(*stub, &later), later);
  EXPECT_EQ(drain.arrivals(), 2u);  // The drain waits for this count to stop growing.
}

}  // namespace
}  // namespace tb::proxy
