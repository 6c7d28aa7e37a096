// Per-command header rules (PROTOCOL.md §6): each rule alone turns a valid header invalid.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <string>

#include "client_core/checksum.h"
#include "client_core/header.h"
#include "client_core/operation.h"
#include "client_core/release.h"
#include "client_core/testing/headers.h"

namespace tb {
namespace {

using ::testing::HasSubstr;

using client_core::testing::EmptyHeader;
using client_core::testing::kTestClient;

constexpr u128 kClient = kTestClient;

RequestHeader ValidRequest() {
  RequestHeader request = client_core::testing::TestRequest();
  request.frame.size = kHeaderSize + 128 + 128;
  return request;
}

RequestHeader ValidRegister() {
  auto request = EmptyHeader<RequestHeader>(Command::kRequest);
  request.client = kClient;
  request.operation = static_cast<uint8_t>(Operation::kRegister);
  request.frame.size = kHeaderSize + kRegisterRequestBodySize;
  return request;
}

ReplyHeader ValidReply() { return client_core::testing::TestReply(); }

template <typename View>
struct Case {
  const char* rule;  // Expected in the error message.
  std::function<void(View&)> mutate;
};

template <typename View>
void ExpectEachCaseRejected(const View& valid, absl::Status (*validate)(const View&),
                            std::initializer_list<Case<View>> cases) {
  ASSERT_TRUE(validate(valid).ok()) << validate(valid);
  for (const Case<View>& test_case : cases) {
    View view = valid;
    test_case.mutate(view);
    const absl::Status status = validate(view);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << test_case.rule;
    EXPECT_THAT(std::string(status.message()), HasSubstr(test_case.rule));
  }
}

TEST(ValidateRequest, RejectsEachRuleOfAnOrdinaryRequest) {
  using C = Case<RequestHeader>;
  ExpectEachCaseRejected<RequestHeader>(
      ValidRequest(), ValidateRequest,
      {
          C{"expected a request", [](RequestHeader& h) { h.frame.command = Command::kReply; }},
          C{"release == 0", [](RequestHeader& h) { h.frame.release = 0; }},
          C{"parent_padding", [](RequestHeader& h) { h.parent_padding = 1; }},
          C{"previous_request_latency_padding",
            [](RequestHeader& h) { h.previous_request_latency_padding[2] = 1; }},
          C{"reserved", [](RequestHeader& h) { h.reserved[51] = 1; }},
          C{"reserved", [](RequestHeader& h) { h.operation = 0; }},
          C{"root", [](RequestHeader& h) { h.operation = 1; }},
          C{"pulse", [](RequestHeader& h) { h.operation = 4; }},
          C{"upgrade", [](RequestHeader& h) { h.operation = 5; }},
          C{"reconfigure",
            [](RequestHeader& h) {
              h.operation = 3;
              h.frame.size = kHeaderSize;
            }},
          C{"noop", [](RequestHeader& h) { h.operation = 6; }},
          C{"operation 7", [](RequestHeader& h) { h.operation = 7; }},
          C{"operation 127", [](RequestHeader& h) { h.operation = 127; }},
          C{"replica != 0", [](RequestHeader& h) { h.frame.replica = 1; }},
          C{"client == 0", [](RequestHeader& h) { h.client = 0; }},
          C{"session == 0", [](RequestHeader& h) { h.session = 0; }},
          C{"request == 0", [](RequestHeader& h) { h.request = 0; }},
      });
}

TEST(ValidateRequest, AcceptsEveryStateMachineOperationNumber) {
  // Operation numbers 128..255 are judged later, by the replica's operation check (§9.1).
  for (int operation = kStateMachineOperationMin; operation <= 255; operation++) {
    RequestHeader request = ValidRequest();
    request.operation = static_cast<uint8_t>(operation);
    EXPECT_TRUE(ValidateRequest(request).ok()) << operation;
  }
  // Operator tooling's operations keep the replica's size rules.
  RequestHeader reconfigure = ValidRequest();
  reconfigure.operation = 3;
  reconfigure.frame.size = kHeaderSize + 256;
  EXPECT_TRUE(ValidateRequest(reconfigure).ok());
  RequestHeader noop = ValidRequest();
  noop.operation = 6;
  noop.frame.size = kHeaderSize;
  EXPECT_TRUE(ValidateRequest(noop).ok());
  // A non-zero timestamp is dropped by a replica later (§9.1 step 15), not by header rules.
  RequestHeader timestamp = ValidRequest();
  timestamp.timestamp = 1;
  EXPECT_TRUE(ValidateRequest(timestamp).ok());
  RequestHeader latency = ValidRequest();
  latency.previous_request_latency = 0xFFFFFFFF;
  EXPECT_TRUE(ValidateRequest(latency).ok());
}

TEST(ValidateRequest, RejectsEachRuleOfARegister) {
  using C = Case<RequestHeader>;
  ExpectEachCaseRejected<RequestHeader>(
      ValidRegister(), ValidateRequest,
      {
          C{"register: replica", [](RequestHeader& h) { h.frame.replica = 2; }},
          C{"register: client", [](RequestHeader& h) { h.client = 0; }},
          C{"register: parent", [](RequestHeader& h) { h.parent = 1; }},
          C{"register: session", [](RequestHeader& h) { h.session = 1; }},
          C{"register: request", [](RequestHeader& h) { h.request = 1; }},
          C{"register: size", [](RequestHeader& h) { h.frame.size = 384; }},
          C{"register: size", [](RequestHeader& h) { h.frame.size = 513; }},
      });
  RequestHeader old_client = ValidRegister();
  old_client.frame.size = kHeaderSize;  // Tolerated so that old clients can be told "too low".
  EXPECT_TRUE(ValidateRequest(old_client).ok());
}

TEST(ValidateReply, RejectsEachRule) {
  using C = Case<ReplyHeader>;
  ExpectEachCaseRejected<ReplyHeader>(
      ValidReply(), ValidateReply,
      {
          C{"expected a reply", [](ReplyHeader& h) { h.frame.command = Command::kRequest; }},
          C{"release == 0", [](ReplyHeader& h) { h.frame.release = 0; }},
          C{"request_checksum_padding", [](ReplyHeader& h) { h.request_checksum_padding = 1; }},
          C{"context_padding", [](ReplyHeader& h) { h.context_padding = 1; }},
          C{"client == 0", [](ReplyHeader& h) { h.client = 0; }},
          C{"op != commit", [](ReplyHeader& h) { h.op = 8; }},
          C{"commit == 0",
            [](ReplyHeader& h) {
              h.op = 0;
              h.commit = 0;
            }},
          C{"timestamp == 0", [](ReplyHeader& h) { h.timestamp = 0; }},
          C{"reserved", [](ReplyHeader& h) { h.reserved[18] = 1; }},
          C{"request == 0", [](ReplyHeader& h) { h.request = 0; }},
      });
}

TEST(ValidateReply, RegisterRepliesHaveTheirOwnRules) {
  ReplyHeader reply = ValidReply();
  reply.operation = static_cast<uint8_t>(Operation::kRegister);
  reply.request = 0;
  reply.frame.size = kHeaderSize + kRegisterResultBodySize;
  using C = Case<ReplyHeader>;
  ExpectEachCaseRejected<ReplyHeader>(
      reply, ValidateReply,
      {
          C{"register: size", [](ReplyHeader& h) { h.frame.size = kHeaderSize; }},
          C{"register: request", [](ReplyHeader& h) { h.request = 1; }},
      });
}

TEST(ValidatePingClient, RejectsEachRule) {
  auto ping = EmptyHeader<PingClientHeader>(Command::kPingClient);
  ping.client = kClient;
  ping.session = 5;
  ping.ping_timestamp_monotonic = 77;
  using C = Case<PingClientHeader>;
  ExpectEachCaseRejected<PingClientHeader>(
      ping, ValidatePingClient,
      {
          C{"expected a ping_client",
            [](PingClientHeader& h) { h.frame.command = Command::kPing; }},
          C{"size", [](PingClientHeader& h) { h.frame.size = kHeaderSize + 1; }},
          C{"checksum_body", [](PingClientHeader& h) { h.frame.checksum_body = 0; }},
          C{"release == 0", [](PingClientHeader& h) { h.frame.release = 0; }},
          C{"replica != 0", [](PingClientHeader& h) { h.frame.replica = 1; }},
          C{"view != 0", [](PingClientHeader& h) { h.frame.view = 1; }},
          C{"client == 0", [](PingClientHeader& h) { h.client = 0; }},
          C{"reserved", [](PingClientHeader& h) { h.reserved[95] = 1; }},
      });
}

TEST(ValidatePongClient, RejectsEachRule) {
  auto pong = EmptyHeader<PongClientHeader>(Command::kPongClient);
  pong.frame.view = 3;
  pong.frame.replica = 5;
  using C = Case<PongClientHeader>;
  ExpectEachCaseRejected<PongClientHeader>(
      pong, ValidatePongClient,
      {
          C{"expected a pong_client",
            [](PongClientHeader& h) { h.frame.command = Command::kPong; }},
          C{"size", [](PongClientHeader& h) { h.frame.size = kHeaderSize + 16; }},
          C{"checksum_body", [](PongClientHeader& h) { h.frame.checksum_body += 1; }},
          C{"release == 0", [](PongClientHeader& h) { h.frame.release = 0; }},
          C{"reserved", [](PongClientHeader& h) { h.reserved[0] = 1; }},
          C{"replica 6", [](PongClientHeader& h) { h.frame.replica = 6; }},
      });
}

TEST(ValidateEviction, RejectsEachRuleAndAcceptsEveryReason) {
  auto eviction = EmptyHeader<EvictionHeader>(Command::kEviction);
  eviction.client = kClient;
  eviction.reason = EvictionReason::kInvalidRequestBody;
  using C = Case<EvictionHeader>;
  ExpectEachCaseRejected<EvictionHeader>(
      eviction, ValidateEviction,
      {
          C{"expected a eviction", [](EvictionHeader& h) { h.frame.command = Command::kReply; }},
          C{"size", [](EvictionHeader& h) { h.frame.size = kHeaderSize + 64; }},
          C{"checksum_body", [](EvictionHeader& h) { h.frame.checksum_body = 0; }},
          C{"release == 0", [](EvictionHeader& h) { h.frame.release = 0; }},
          C{"client == 0", [](EvictionHeader& h) { h.client = 0; }},
          C{"reserved", [](EvictionHeader& h) { h.reserved[110] = 1; }},
          C{"reason 0", [](EvictionHeader& h) { h.reason = EvictionReason::kReserved; }},
          C{"reason 9", [](EvictionHeader& h) { h.reason = static_cast<EvictionReason>(9); }},
      });
  for (int reason = 1; reason <= kEvictionReasonMax; reason++) {
    eviction.reason = static_cast<EvictionReason>(reason);
    EXPECT_TRUE(ValidateEviction(eviction).ok()) << reason;
  }
}

TEST(Names, CommandsAndEvictionReasons) {
  EXPECT_STREQ(CommandName(Command::kRequest), "request");
  EXPECT_STREQ(CommandName(Command::kPingClient), "ping_client");
  EXPECT_STREQ(CommandName(Command::kExitView), "exit_view");
  EXPECT_STREQ(CommandName(Command::kView), "view");
  EXPECT_STREQ(CommandName(static_cast<Command>(25)), "unknown");
  EXPECT_STREQ(CommandName(static_cast<Command>(255)), "unknown");
  EXPECT_STREQ(EvictionReasonName(EvictionReason::kNoSession), "no_session");
  EXPECT_STREQ(EvictionReasonName(EvictionReason::kInvalidRequestBody), "invalid_request_body");
  EXPECT_STREQ(EvictionReasonName(EvictionReason::kSessionReleaseMismatch),
               "session_release_mismatch");
  EXPECT_STREQ(EvictionReasonName(static_cast<EvictionReason>(9)), "unknown");
  EXPECT_STREQ(EvictionReasonName(static_cast<EvictionReason>(255)), "unknown");
}

TEST(HeaderToString, NamesTheCommandAndItsKeyFields) {
  const std::string request = HeaderToString(AsHeader(ValidRequest()));
  EXPECT_THAT(request, HasSubstr("request"));
  EXPECT_THAT(request, HasSubstr("session=3"));
  EXPECT_THAT(request, HasSubstr("request=4"));
  EXPECT_THAT(request, HasSubstr("operation=147"));
  EXPECT_THAT(request, HasSubstr("release=0.17.9"));
  auto eviction = EmptyHeader<EvictionHeader>(Command::kEviction);
  eviction.reason = EvictionReason::kSessionTooLow;
  EXPECT_THAT(HeaderToString(AsHeader(eviction)), HasSubstr("reason=session_too_low"));
  const std::string reply = HeaderToString(AsHeader(ValidReply()));
  EXPECT_THAT(reply, HasSubstr("op=9"));
}

}  // namespace
}  // namespace tb
