#include "proxy/grpc/grpc_service.h"

#include <atomic>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "client_core/bytes.h"
#include "client_core/outcome.h"
#include "client_core/types.h"
#include "gmock/gmock.h"
#include "grpcpp/generic/generic_stub.h"
#include "gtest/gtest.h"
#include "proxy/grpc/call_memory.h"
#include "proxy/grpc/grpc_convert.h"
#include "proxy/grpc/grpc_status.h"
#include "proxy/testing/grpc_message_util.h"
#include "proxy/testing/grpc_test_server.h"

namespace tb::proxy {
namespace {

using ::testing::HasSubstr;
using testing::TestServer;

using testing::SetU128;

// Answers like a cluster would, shaped by operation: creates get one result per event, lookups
// find the ids that are odd, queries return one object.
absl::StatusOr<SubmitResult> ClusterLikeAnswer(const SubmitRequest& request) {
  SubmitResult result{.timestamp = 777};
  switch (request.operation) {
    case 146:
    case 147:
      for (size_t i = 0; i < request.events.size() / 128; ++i) {
        AppendStruct(&result.results, CreateResult{.timestamp = 1000 + i,
                                                   .status = i == 0 ? 0xFFFFFFFFu : 1u,
                                                   .reserved = 0});
      }
      break;
    case 140:
    case 141:
      for (size_t i = 0; i < request.events.size() / 16; ++i) {
        const u128 id = StructAt<u128>(request.events, i);
        if ((id & 1) == 0) continue;
        if (request.operation == 140) {
          Account account{};
          account.id = id;
          account.ledger = 1;
          AppendStruct(&result.results, account);
        } else {
          Transfer transfer{};
          transfer.id = id;
          transfer.amount = 5;
          AppendStruct(&result.results, transfer);
        }
      }
      break;
    case 142:
    case 145: {
      Transfer transfer{};
      transfer.id = 42;
      AppendStruct(&result.results, transfer);
      break;
    }
    case 143: {
      AccountBalance balance{};
      balance.debits_posted = 43;
      AppendStruct(&result.results, balance);
      break;
    }
    case 144: {
      Account account{};
      account.id = 44;
      AppendStruct(&result.results, account);
      break;
    }
    case 137: {
      ChangeEvent event{};
      event.transfer_id = 37;
      AppendStruct(&result.results, event);
      break;
    }
    default:
      return absl::InternalError("unexpected operation");
  }
  return result;
}

class GrpcServiceTest : public ::testing::Test {
 protected:
  GrpcServiceTest() : stub_(server_.NewStub()) { server_.submitter.set_answer(ClusterLikeAnswer); }

  TestServer server_;
  std::unique_ptr<v1::TigerBeetle::Stub> stub_;
};

TEST_F(GrpcServiceTest, CreateAccountsReturnsPerEventResults) {
  grpc::ClientContext context;
  v1::CreateAccountsRequest request;
  SetU128(request.add_accounts()->mutable_id(), 0, 1);
  SetU128(request.add_accounts()->mutable_id(), 0, 2);
  request.mutable_accounts(1)->set_flags(account_flags::kLinked);
  v1::CreateAccountsResponse response;
  grpc::Status status = stub_->CreateAccounts(&context, request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.timestamp(), 777u);
  ASSERT_EQ(response.results_size(), 2);
  EXPECT_EQ(response.results(0).status(), v1::CREATE_ACCOUNT_STATUS_CREATED);
  EXPECT_EQ(response.results(0).status_code(), 0xFFFFFFFFu);
  EXPECT_EQ(response.results(0).timestamp(), 1000u);
  EXPECT_EQ(response.results(1).status(), v1::CREATE_ACCOUNT_STATUS_LINKED_EVENT_FAILED);
  const auto calls = server_.submitter.calls();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].request.operation, 146);
  ASSERT_EQ(calls[0].request.events.size(), 256u);
  const Account second = StructAt<Account>(calls[0].request.events, 1);
  EXPECT_EQ(second.id, 2u);
  EXPECT_EQ(second.flags, account_flags::kLinked);
  EXPECT_EQ(calls[0].options.ordering_key, 0u);
}

// A one-id lookup with metadata tbproxy-ordering-key: `name` (none when null).
grpc::Status LookupWithOrderingKey(v1::TigerBeetle::Stub& stub, const char* name) {
  grpc::ClientContext context;
  if (name != nullptr) context.AddMetadata(kOrderingKeyMetadataKey, name);
  v1::LookupAccountsRequest request;
  SetU128(request.add_ids(), 0, 1);
  v1::LookupAccountsResponse response;
  return stub.LookupAccounts(&context, request, &response);
}

TEST_F(GrpcServiceTest, UnaryCallsWithTheSameOrderingKeyNameShareOneKey) {
  for (const char* name : {"ledger-7", "ledger-7", "ledger-8", static_cast<const char*>(nullptr)}) {
    grpc::Status status = LookupWithOrderingKey(*stub_, name);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }
  const auto calls = server_.submitter.calls();
  ASSERT_EQ(calls.size(), 4u);
  const uint64_t key = calls[0].options.ordering_key;
  EXPECT_NE(key, 0u);
  EXPECT_EQ(key & kStreamOrderingKeyTag, 0u) << "unary keys stay out of the streams' share";
  EXPECT_EQ(calls[1].options.ordering_key, key);
  EXPECT_NE(calls[2].options.ordering_key, key);
  EXPECT_NE(calls[2].options.ordering_key, 0u);
  EXPECT_EQ(calls[3].options.ordering_key, 0u);
}

TEST_F(GrpcServiceTest, OrderingKeyNamesOutsideTheirBoundsAreRefusedAndNeverSubmitted) {
  const std::string longest(kOrderingKeyNameBytesMax, 'k');
  const std::string too_long(kOrderingKeyNameBytesMax + 1, 'k');
  for (const std::string& name : {std::string(), too_long}) {
    grpc::Status status = LookupWithOrderingKey(*stub_, name.c_str());
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << name.size();
    EXPECT_THAT(status.error_message(), HasSubstr("tbproxy-ordering-key"));
  }
  EXPECT_TRUE(server_.submitter.calls().empty());
  EXPECT_TRUE(LookupWithOrderingKey(*stub_, longest.c_str()).ok());
  EXPECT_EQ(server_.submitter.calls().size(), 1u);
}

TEST_F(GrpcServiceTest, CreateTransfersReturnsPerEventResults) {
  grpc::ClientContext context;
  v1::CreateTransfersRequest request;
  v1::Transfer* transfer = request.add_transfers();
  SetU128(transfer->mutable_id(), 0, 9);
  SetU128(transfer->mutable_debit_account_id(), 0, 1);
  SetU128(transfer->mutable_credit_account_id(), 0, 2);
  SetU128(transfer->mutable_amount(), 1, 0);
  v1::CreateTransfersResponse response;
  grpc::Status status = stub_->CreateTransfers(&context, request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(response.results_size(), 1);
  EXPECT_EQ(response.results(0).status(), v1::CREATE_TRANSFER_STATUS_CREATED);
  const Transfer native = StructAt<Transfer>(server_.submitter.calls()[0].request.events, 0);
  EXPECT_EQ(native.amount, MakeU128(1, 0));
}

TEST_F(GrpcServiceTest, LookupsReturnOnlyWhatExists) {
  grpc::ClientContext context;
  v1::LookupAccountsRequest request;
  for (uint64_t id : {1, 2, 3}) SetU128(request.add_ids(), 0, id);
  v1::LookupAccountsResponse response;
  ASSERT_TRUE(stub_->LookupAccounts(&context, request, &response).ok());
  ASSERT_EQ(response.accounts_size(), 2);
  EXPECT_EQ(response.accounts(0).id().lo(), 1u);
  EXPECT_EQ(response.accounts(1).id().lo(), 3u);
  EXPECT_EQ(response.accounts(1).ledger(), 1u);

  grpc::ClientContext transfers_context;
  v1::LookupTransfersRequest transfers_request;
  SetU128(transfers_request.add_ids(), 7, 5);
  v1::LookupTransfersResponse transfers;
  ASSERT_TRUE(stub_->LookupTransfers(&transfers_context, transfers_request, &transfers).ok());
  ASSERT_EQ(transfers.transfers_size(), 1);
  EXPECT_EQ(transfers.transfers(0).id().hi(), 7u);
  EXPECT_EQ(transfers.transfers(0).amount().lo(), 5u);
}

TEST_F(GrpcServiceTest, FilterQueriesConvertBothWays) {
  {
    grpc::ClientContext context;
    v1::GetAccountTransfersRequest request;
    SetU128(request.mutable_filter()->mutable_account_id(), 0, 1);
    request.mutable_filter()->set_limit(10);
    v1::GetAccountTransfersResponse response;
    ASSERT_TRUE(stub_->GetAccountTransfers(&context, request, &response).ok());
    ASSERT_EQ(response.transfers_size(), 1);
    EXPECT_EQ(response.transfers(0).id().lo(), 42u);
  }
  {
    grpc::ClientContext context;
    v1::GetAccountBalancesRequest request;
    SetU128(request.mutable_filter()->mutable_account_id(), 0, 1);
    request.mutable_filter()->set_limit(10);
    v1::GetAccountBalancesResponse response;
    ASSERT_TRUE(stub_->GetAccountBalances(&context, request, &response).ok());
    ASSERT_EQ(response.balances_size(), 1);
    EXPECT_EQ(response.balances(0).debits_posted().lo(), 43u);
  }
  {
    grpc::ClientContext context;
    v1::QueryAccountsRequest request;
    request.mutable_filter()->set_limit(10);
    v1::QueryAccountsResponse response;
    ASSERT_TRUE(stub_->QueryAccounts(&context, request, &response).ok());
    ASSERT_EQ(response.accounts_size(), 1);
    EXPECT_EQ(response.accounts(0).id().lo(), 44u);
  }
  {
    grpc::ClientContext context;
    v1::QueryTransfersRequest request;
    request.mutable_filter()->set_limit(10);
    v1::QueryTransfersResponse response;
    ASSERT_TRUE(stub_->QueryTransfers(&context, request, &response).ok());
    ASSERT_EQ(response.transfers_size(), 1);
  }
  {
    grpc::ClientContext context;
    v1::GetChangeEventsRequest request;
    request.mutable_filter()->set_limit(10);
    v1::GetChangeEventsResponse response;
    ASSERT_TRUE(stub_->GetChangeEvents(&context, request, &response).ok());
    ASSERT_EQ(response.events_size(), 1);
    EXPECT_EQ(response.events(0).transfer_id().lo(), 37u);
  }
  std::vector<uint8_t> operations;
  for (const auto& call : server_.submitter.calls()) operations.push_back(call.request.operation);
  EXPECT_THAT(operations, ::testing::ElementsAre(142, 143, 144, 145, 137));
}

TEST_F(GrpcServiceTest, RawPassesBytesThroughUnchanged) {
  grpc::ClientContext context;
  v1::RawRequest request;
  request.set_operation(140);
  std::string ids(32, '\0');
  ids[0] = 3;   // id 3 exists (odd).
  ids[16] = 4;  // id 4 does not.
  request.set_events(ids);
  v1::RawResponse response;
  ASSERT_TRUE(stub_->Raw(&context, request, &response).ok());
  EXPECT_EQ(response.timestamp(), 777u);
  ASSERT_EQ(response.results().size(), 128u);
  EXPECT_EQ(response.results()[0], 3);
  EXPECT_EQ(server_.submitter.calls()[0].request.events,
            std::vector<uint8_t>(ids.begin(), ids.end()));
}

TEST_F(GrpcServiceTest, BadInputIsInvalidArgumentAndNeverSubmitted) {
  v1::RawRequest unknown_operation;
  unknown_operation.set_operation(128);
  v1::RawRequest wrong_size;
  wrong_size.set_operation(146);
  wrong_size.set_events(std::string(129, '\0'));
  v1::CreateAccountsRequest missing_id;
  missing_id.add_accounts()->set_ledger(1);
  v1::LookupAccountsRequest malformed;
  std::string wire = {static_cast<char>((2 << 3) | 2), 1, 'x'};  // hi as a string.
  ASSERT_TRUE(malformed.add_ids()->ParseFromString(wire));
  v1::QueryAccountsRequest missing_filter;

  for (int attempt = 0; attempt < 5; ++attempt) {
    grpc::ClientContext context;
    grpc::Status status;
    if (attempt == 0) {
      v1::RawResponse response;
      status = stub_->Raw(&context, unknown_operation, &response);
    } else if (attempt == 1) {
      v1::RawResponse response;
      status = stub_->Raw(&context, wrong_size, &response);
    } else if (attempt == 2) {
      v1::CreateAccountsResponse response;
      status = stub_->CreateAccounts(&context, missing_id, &response);
      EXPECT_THAT(status.error_message(), HasSubstr("accounts[0].id: required"));
    } else if (attempt == 3) {
      v1::LookupAccountsResponse response;
      status = stub_->LookupAccounts(&context, malformed, &response);
      EXPECT_THAT(status.error_message(), HasSubstr("malformed"));
    } else {
      v1::QueryAccountsResponse response;
      status = stub_->QueryAccounts(&context, missing_filter, &response);
    }
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << attempt;
    // Refused before queueing: no outcome metadata.
    EXPECT_EQ(context.GetServerTrailingMetadata().count(kOutcomeMetadataKey), 0u);
  }
  EXPECT_TRUE(server_.submitter.calls().empty());
  // Each still reaches the per-call metrics, under the operation it asked for.
  const auto refusals = server_.submitter.refusals();
  ASSERT_EQ(refusals.size(), 5u);
  const uint8_t asked[] = {128, 146, 146, 140, 144};
  for (size_t i = 0; i < refusals.size(); i++) {
    EXPECT_EQ(refusals[i].operation, asked[i]) << i;
    EXPECT_EQ(refusals[i].code, absl::StatusCode::kInvalidArgument) << i;
  }
}

TEST(GrpcServiceLimits, OversizeMessageIsResourceExhausted) {
  GrpcServerOptions options = TestServer::DefaultServerOptions();
  options.message_size_max_bytes = 4096;
  TestServer server({}, options);
  auto stub = server.NewStub();
  grpc::ClientContext context;
  v1::RawRequest request;
  request.set_operation(140);
  request.set_events(std::string(16 * 512, '\0'));
  v1::RawResponse response;
  EXPECT_EQ(stub->Raw(&context, request, &response).error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_TRUE(server.submitter.calls().empty());
}

TEST_F(GrpcServiceTest, PortInUseIsAStartError) {
  GrpcServerOptions options = TestServer::DefaultServerOptions();
  options.listen_address = server_.address();
  testing::FakeSubmitter submitter;
  GrpcService service(submitter, {});
  absl::StatusOr<std::unique_ptr<GrpcServer>> second = GrpcServer::Start(options, &service);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(second.status().message(), HasSubstr("listen"));
}

TEST_F(GrpcServiceTest, SubmitterErrorsKeepCodeAndOutcome) {
  server_.submitter.set_answer([](const SubmitRequest&) -> absl::StatusOr<SubmitResult> {
    return WithOutcome(absl::DeadlineExceededError("in flight at the deadline"), Outcome::kUnknown);
  });
  grpc::ClientContext context;
  v1::LookupAccountsRequest request;
  SetU128(request.add_ids(), 0, 1);
  v1::LookupAccountsResponse response;
  grpc::Status status = stub_->LookupAccounts(&context, request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_THAT(status.error_message(), HasSubstr("outcome: unknown"));
  auto trailing = context.GetServerTrailingMetadata();
  auto it = trailing.find(kOutcomeMetadataKey);
  ASSERT_NE(it, trailing.end());
  EXPECT_EQ(std::string(it->second.data(), it->second.size()), "unknown");

  server_.submitter.set_answer([](const SubmitRequest&) -> absl::StatusOr<SubmitResult> {
    return WithOutcome(absl::ResourceExhaustedError("queue full"), Outcome::kNotApplied);
  });
  grpc::ClientContext second;
  status = stub_->LookupAccounts(&second, request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  auto not_applied = second.GetServerTrailingMetadata().find(kOutcomeMetadataKey);
  ASSERT_NE(not_applied, second.GetServerTrailingMetadata().end());
  EXPECT_EQ(std::string(not_applied->second.data(), not_applied->second.size()), "not_applied");
}

TEST_F(GrpcServiceTest, CallDeadlineReachesTheSubmitter) {
  const absl::Time before = absl::Now();
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(before + absl::Minutes(10)));
  v1::QueryAccountsRequest request;
  request.mutable_filter()->set_limit(1);
  v1::QueryAccountsResponse response;
  ASSERT_TRUE(stub_->QueryAccounts(&context, request, &response).ok());
  grpc::ClientContext no_deadline;
  ASSERT_TRUE(stub_->QueryAccounts(&no_deadline, request, &response).ok());
  const auto calls = server_.submitter.calls();
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_GT(calls[0].options.deadline, before + absl::Minutes(9));
  EXPECT_LE(calls[0].options.deadline, before + absl::Minutes(11));
  EXPECT_EQ(calls[1].options.deadline, absl::InfiniteFuture());
}

// A one-id LookupAccounts started asynchronously and held by the submitter until released.
struct HeldLookup {
  HeldLookup(v1::TigerBeetle::Stub& stub, testing::FakeSubmitter& submitter) {
    submitter.set_hold(true);
    SetU128(request.add_ids(), 0, 1);
    stub.async()->LookupAccounts(&context, &request, &response, [this](grpc::Status s) {
      status = s;
      done.Notify();
    });
    submitter.WaitForPending(1);
  }

  grpc::ClientContext context;
  v1::LookupAccountsRequest request;
  v1::LookupAccountsResponse response;
  absl::Notification done;
  grpc::Status status;
};

TEST_F(GrpcServiceTest, CancelledCallFinishesAndTheLateAnswerIsDropped) {
  HeldLookup call(*stub_, server_.submitter);
  call.context.TryCancel();
  call.done.WaitForNotification();
  EXPECT_EQ(call.status.error_code(), grpc::StatusCode::CANCELLED);
  // The submitter answers later; the service must neither crash nor touch the finished call.
  server_.submitter.ReleaseOldest(ClusterLikeAnswer);
  grpc::ClientContext after;
  server_.submitter.set_hold(false);
  EXPECT_TRUE(stub_->LookupAccounts(&after, call.request, &call.response).ok());
}

TEST(GrpcServiceCallMemory, ACallThatDoesNotFitIsRefusedUntilTheCallHoldingTheMemoryIsDone) {
  const uint64_t one_call = CallMemoryBound(140, std::vector<uint8_t>(16), CallKind::kUnary);
  TestServer server({.call_memory_max = one_call + one_call / 2});
  auto stub = server.NewStub();
  auto held = std::make_unique<HeldLookup>(*stub, server.submitter);
  EXPECT_EQ(server.service.call_memory().reserved(), one_call);

  grpc::ClientContext context;
  v1::LookupAccountsRequest request;
  SetU128(request.add_ids(), 0, 2);
  v1::LookupAccountsResponse response;
  const grpc::Status refused = stub->LookupAccounts(&context, request, &response);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(refused.error_message(), HasSubstr("--grpc-call-memory-max"));
  EXPECT_EQ(testing::OutcomeMetadata(context), "not_applied");
  EXPECT_EQ(server.submitter.calls().size(), 1u) << "a refused call is never submitted";
  EXPECT_EQ(server.service.call_memory().refused(), 1u);
  ASSERT_EQ(server.submitter.refusals().size(), 1u);
  EXPECT_EQ(server.submitter.refusals()[0].code, absl::StatusCode::kResourceExhausted);

  // Answered and done (OnDone may follow the client's status by a moment): the memory is back.
  server.submitter.ReleaseOldest(ClusterLikeAnswer);
  held->done.WaitForNotification();
  EXPECT_TRUE(held->status.ok()) << held->status.error_message();
  held.reset();
  const absl::Time give_up = absl::Now() + absl::Seconds(10);
  while (server.service.call_memory().reserved() != 0 && absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  EXPECT_EQ(server.service.call_memory().reserved(), 0u);
  server.submitter.set_hold(false);
  server.submitter.set_answer(ClusterLikeAnswer);
  grpc::ClientContext again;
  EXPECT_TRUE(stub->LookupAccounts(&again, request, &response).ok());
}

TEST(GrpcServiceShutdown, ACallHeldAtShutdownEndsAndItsLateAnswerIsDropped) {
  TestServer server;
  auto stub = server.NewStub();
  HeldLookup call(*stub, server.submitter);
  // The deadline passes with the call still held: the server cancels it and returns.
  server.server->Shutdown(absl::Now() + absl::Milliseconds(100));
  call.done.WaitForNotification();
  EXPECT_FALSE(call.status.ok());
  // The submitter answers after the server is gone; the call must not be answered twice.
  server.submitter.ReleaseOldest(ClusterLikeAnswer);
}

// Health/Check's HealthCheckResponse bytes, or the call's error.
absl::StatusOr<std::string> CheckHealth(const std::string& address) {
  auto channel = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  grpc::GenericStub generic(channel);
  grpc::ClientContext context;
  grpc::Slice empty_request("");  // HealthCheckRequest{service: ""} is empty.
  grpc::ByteBuffer request_buffer(&empty_request, 1);
  grpc::ByteBuffer response_buffer;
  absl::Notification done;
  grpc::Status status;
  generic.UnaryCall(&context, "/grpc.health.v1.Health/Check", grpc::StubOptions(),
                    &request_buffer, &response_buffer, [&](grpc::Status s) {
                      status = s;
                      done.Notify();
                    });
  done.WaitForNotification();
  if (!status.ok()) return absl::UnknownError(status.error_message());
  std::vector<grpc::Slice> slices;
  if (!response_buffer.Dump(&slices).ok()) return absl::InternalError("unreadable response");
  std::string bytes;
  for (const grpc::Slice& slice : slices) {
    bytes.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  }
  return bytes;
}

// HealthCheckResponse{status}: field 1 varint; SERVING = 1, NOT_SERVING = 2.
const std::string kServing({0x08, 1});
const std::string kNotServing({0x08, 2});

TEST(GrpcServiceHealth, ServingStatusFollowsReadiness) {
  for (bool ready : {false, true}) {
    GrpcServerOptions options = TestServer::DefaultServerOptions();
    options.readiness = [ready] { return ready; };
    TestServer server({}, options);
    absl::StatusOr<std::string> status = CheckHealth(server.address());
    ASSERT_TRUE(status.ok()) << status.status();
    EXPECT_EQ(*status, ready ? kServing : kNotServing);
  }
}

TEST(GrpcServiceHealth, AReadinessChangeReachesHealthChecksAtTheNextPoll) {
  std::atomic<bool> ready{true};
  GrpcServerOptions options = TestServer::DefaultServerOptions();
  options.readiness = [&ready] { return ready.load(); };
  options.readiness_poll_interval = absl::Milliseconds(10);
  TestServer server({}, options);
  EXPECT_EQ(CheckHealth(server.address()).value_or(""), kServing);
  for (bool next : {false, true, false}) {
    ready = next;
    const std::string want = next ? kServing : kNotServing;
    const absl::Time give_up = absl::Now() + absl::Seconds(10);
    absl::StatusOr<std::string> status = CheckHealth(server.address());
    while (status.value_or("") != want && absl::Now() < give_up) {
      absl::SleepFor(absl::Milliseconds(5));
      status = CheckHealth(server.address());
    }
    EXPECT_EQ(status.value_or(""), want) << "readiness " << next;
  }
}

}  // namespace
}  // namespace tb::proxy
