#include "client_core/replica/replica_protocol.h"

#include <cstring>
#include <random>
#include <vector>

#include "client_core/checksum.h"
#include "client_core/header.h"
#include "client_core/multi_batch.h"
#include "client_core/operation.h"
#include "client_core/testing/events.h"
#include "client_core/types.h"
#include "client_core/replica/echo_executor.h"
#include "client_core/replica/testing/test_client.h"
#include "gtest/gtest.h"

namespace tb::replica {
namespace {

using client_core::testing::ParseHeader;
using client_core::testing::Serialize;
using testing::TestClient;

constexpr uint8_t kRegister = 2;
constexpr uint8_t kCreateAccounts = 146;
constexpr uint8_t kLookupAccounts = 140;
constexpr uint64_t kNow = 1'700'000'000'000'000'000ULL;

class CountingExecutor final : public Executor {
 public:
  ExecuteResult Execute(uint8_t operation, std::span<const uint8_t> body,
                        uint64_t now_ns) override {
    calls++;
    return echo.Execute(operation, body, now_ns);
  }
  EchoExecutor echo;
  int calls = 0;
};

std::vector<uint8_t> AccountsBody(int count) { return client_core::testing::CreateAccountsBody(count, 1000); }

std::vector<uint8_t> LookupBody(u128 id) {
  std::vector<uint8_t> ids(sizeof(u128));
  std::memcpy(ids.data(), &id, sizeof(id));
  const std::span<const uint8_t> batches[] = {ids};
  return EncodeMultiBatch(sizeof(u128), batches);
}

class ReplicaProtocolTest : public ::testing::Test {
 protected:
  void Make(ReplicaProtocolOptions options) {
    protocol_ = std::make_unique<ReplicaProtocol>(options, &executor_);
  }
  void SetUp() override { Make({}); }

  ConnectionId Open(uint8_t replica = 0) {
    const ConnectionId id = next_connection_++;
    protocol_->OnConnectionOpened(id, replica);
    return id;
  }
  Decision Deliver(ConnectionId connection, const std::vector<uint8_t>& message) {
    return protocol_->OnMessage(connection, message, kNow);
  }
  // Registers `client` on `connection` and makes it follow the reply.
  void Register(TestClient& client, ConnectionId connection) {
    Decision decision = Deliver(connection, client.Register());
    ASSERT_EQ(decision.verdict, Verdict::kReply) << decision.note;
    ASSERT_EQ(decision.sends.size(), 1u);
    client.OnReply(*decision.sends[0].message);
  }
  Decision CreateAccounts(TestClient& client, ConnectionId connection, int count = 1) {
    Decision decision = Deliver(connection, client.Request(kCreateAccounts, AccountsBody(count)));
    if (decision.verdict == Verdict::kReply) client.OnReply(*decision.sends.at(0).message);
    return decision;
  }
  static EvictionHeader EvictionOf(const Decision& decision) {
    EXPECT_EQ(decision.sends.size(), 1u);
    return HeaderAs<EvictionHeader>(ParseHeader(*decision.sends.at(0).message));
  }
  void ExpectEviction(const Decision& decision, ConnectionId connection, u128 client,
                      EvictionReason reason) {
    ASSERT_EQ(decision.verdict, Verdict::kEviction) << decision.note;
    EXPECT_EQ(decision.eviction_reason, reason);
    ASSERT_EQ(decision.sends.size(), 1u);
    EXPECT_EQ(decision.sends[0].connection, connection);
    const auto eviction = EvictionOf(decision);
    EXPECT_TRUE(ValidateEviction(eviction).ok());
    EXPECT_EQ(eviction.frame.command, Command::kEviction);
    EXPECT_EQ(eviction.frame.size, kHeaderSize);
    EXPECT_EQ(eviction.frame.release, kReleaseServer);
    EXPECT_EQ(eviction.client, client);
    EXPECT_EQ(eviction.reason, reason);
  }

  CountingExecutor executor_;
  std::unique_ptr<ReplicaProtocol> protocol_;
  ConnectionId next_connection_ = 1;
};

TEST(ReplicaProtocolOptions, RejectsOutOfRangeSettings) {
  EXPECT_TRUE(ValidateReplicaProtocolOptions({}).ok());
  EXPECT_FALSE(ValidateReplicaProtocolOptions({.replica_count = 0}).ok());
  EXPECT_FALSE(ValidateReplicaProtocolOptions({.replica_count = 7}).ok());
  EXPECT_FALSE(ValidateReplicaProtocolOptions({.clients_max = 0}).ok());
  EXPECT_FALSE(ValidateReplicaProtocolOptions({.clients_max = kClientsMaxLimit + 1}).ok());
  EXPECT_FALSE(ValidateReplicaProtocolOptions({.batch_size_limit = kBatchSizeLimitMin - 1}).ok());
  EXPECT_FALSE(ValidateReplicaProtocolOptions({.batch_size_limit = kBatchSizeLimitMax + 1}).ok());
  EXPECT_FALSE(ValidateReplicaProtocolOptions({.release = 1, .release_client_min = 2}).ok());
}

// ---- Registration, replies, hash chain -------------------------------------------------------

TEST_F(ReplicaProtocolTest, RegisterCommitsASessionAndAnswersWithTheRegisterResult) {
  const ConnectionId connection = Open();
  TestClient client(0x0123456789abcdefULL);
  const std::vector<uint8_t> request = client.Register();
  const Decision decision = Deliver(connection, request);
  ASSERT_EQ(decision.verdict, Verdict::kReply) << decision.note;
  ASSERT_EQ(decision.sends.size(), 1u);
  EXPECT_EQ(decision.sends[0].connection, connection);
  const std::vector<uint8_t>& message = *decision.sends[0].message;
  ASSERT_EQ(message.size(), kHeaderSize + kRegisterResultBodySize);
  const auto reply = HeaderAs<ReplyHeader>(ParseHeader(message));
  EXPECT_TRUE(ValidateReply(reply).ok());
  EXPECT_EQ(reply.frame.release, kReleaseServer);
  EXPECT_EQ(reply.request_checksum, ParseHeader(request).frame.checksum);
  EXPECT_EQ(reply.client, client.id());
  EXPECT_EQ(reply.op, 1u);
  EXPECT_EQ(reply.commit, reply.op);
  EXPECT_EQ(reply.timestamp, kNow);
  EXPECT_EQ(reply.request, 0u);
  EXPECT_EQ(reply.operation, kRegister);
  RegisterResult result;
  std::memcpy(&result, message.data() + kHeaderSize, sizeof(result));
  EXPECT_EQ(result.batch_size_limit, kBatchSizeLimitMax);
  // The context is the checksum of the header with context zero (§4.3).
  ReplyHeader zeroed = reply;
  zeroed.context = 0;
  EXPECT_EQ(reply.context, Checksum(std::span<const uint8_t>(
                               reinterpret_cast<const uint8_t*>(&zeroed) + 16, kHeaderSize - 16)));
  EXPECT_EQ(protocol_->sessions().size(), 1u);
  EXPECT_EQ(executor_.calls, 0);
}

TEST_F(ReplicaProtocolTest, RequestsExecuteInOrderAndChainTheirParents) {
  const ConnectionId connection = Open();
  TestClient client(7);
  Register(client, connection);
  for (int i = 1; i <= 3; i++) {
    const Decision decision = CreateAccounts(client, connection, i);
    ASSERT_EQ(decision.verdict, Verdict::kReply) << decision.note;
    const std::vector<uint8_t>& message = *decision.sends[0].message;
    const auto reply = HeaderAs<ReplyHeader>(ParseHeader(message));
    EXPECT_TRUE(ValidateReply(reply).ok());
    EXPECT_EQ(reply.request, static_cast<uint32_t>(i));
    EXPECT_EQ(reply.op, static_cast<uint64_t>(i + 1));
    EXPECT_EQ(reply.operation, kCreateAccounts);
    auto results = DecodeMultiBatch(std::span(message).subspan(kHeaderSize), sizeof(CreateResult));
    ASSERT_TRUE(results.ok());
    ASSERT_EQ(results->size(), 1u);
    EXPECT_EQ((*results)[0].size(), i * sizeof(CreateResult));
  }
  EXPECT_EQ(executor_.calls, 3);
  EXPECT_EQ(protocol_->op(), 4u);
}

TEST_F(ReplicaProtocolTest, ReplyCarriesTheRequestsReleaseAndTimestampsIncrease) {
  const ConnectionId connection = Open();
  TestClient client(7, MakeRelease(0, 17, 0));
  Register(client, connection);
  const Decision first = CreateAccounts(client, connection, 2);
  const Decision second = Deliver(connection, client.Request(kLookupAccounts, LookupBody(1)));
  ASSERT_EQ(second.verdict, Verdict::kReply);
  const auto a = HeaderAs<ReplyHeader>(ParseHeader(*first.sends[0].message));
  const auto b = HeaderAs<ReplyHeader>(ParseHeader(*second.sends[0].message));
  EXPECT_EQ(a.frame.release, MakeRelease(0, 17, 0));
  EXPECT_EQ(a.timestamp, kNow + 1 + 2);  // base = last + 1, plus two events.
  EXPECT_GT(b.timestamp, a.timestamp);
}

TEST_F(ReplicaProtocolTest, DuplicateRequestGetsTheIdenticalStoredReply) {
  const ConnectionId connection = Open();
  TestClient client(7);
  Register(client, connection);
  const std::vector<uint8_t> request = client.Request(kCreateAccounts, AccountsBody(2));
  const Decision first = Deliver(connection, request);
  ASSERT_EQ(first.verdict, Verdict::kReply);
  const Decision again = Deliver(connection, request);
  ASSERT_EQ(again.verdict, Verdict::kDuplicate) << again.note;
  ASSERT_EQ(again.sends.size(), 1u);
  EXPECT_EQ(*again.sends[0].message, *first.sends[0].message);
  EXPECT_EQ(executor_.calls, 1);
  EXPECT_EQ(protocol_->op(), 2u);
}

TEST_F(ReplicaProtocolTest, DuplicateRegisterGetsTheOriginalRegisterReply) {
  const ConnectionId connection = Open();
  TestClient client(7);
  const std::vector<uint8_t> request = client.Register();
  const Decision first = Deliver(connection, request);
  const Decision again = Deliver(connection, request);
  ASSERT_EQ(again.verdict, Verdict::kDuplicate) << again.note;
  EXPECT_EQ(*again.sends[0].message, *first.sends[0].message);
  EXPECT_EQ(protocol_->op(), 1u);
}

TEST_F(ReplicaProtocolTest, RegisterAfterLaterRequestsIsDroppedAsStale) {
  const ConnectionId connection = Open();
  TestClient client(7);
  const std::vector<uint8_t> register_request = client.Register();
  client.OnReply(*Deliver(connection, register_request).sends[0].message);
  ASSERT_EQ(CreateAccounts(client, connection).verdict, Verdict::kReply);
  EXPECT_EQ(Deliver(connection, register_request).verdict, Verdict::kDrop);
}

TEST_F(ReplicaProtocolTest, WrongParentIsDroppedAndTheSessionContinues) {
  const ConnectionId connection = Open();
  TestClient client(7);
  Register(client, connection);
  RequestHeader header = client.NextHeader(kCreateAccounts);
  header.parent ^= 1;
  const Decision wrong = Deliver(connection, Serialize(AsHeader(header), AccountsBody(1)));
  EXPECT_EQ(wrong.verdict, Verdict::kDrop);
  EXPECT_TRUE(wrong.sends.empty());
  EXPECT_EQ(CreateAccounts(client, connection).verdict, Verdict::kReply);
}

TEST_F(ReplicaProtocolTest, GapsStaleNumbersAndCollisionsAreDropped) {
  const ConnectionId connection = Open();
  TestClient client(7);
  Register(client, connection);
  ASSERT_EQ(CreateAccounts(client, connection).verdict, Verdict::kReply);

  RequestHeader gap = client.NextHeader(kCreateAccounts);
  gap.request += 1;
  EXPECT_EQ(Deliver(connection, Serialize(AsHeader(gap), AccountsBody(1))).verdict,
            Verdict::kDrop);

  RequestHeader collision = client.NextHeader(kCreateAccounts);
  collision.request -= 1;  // = last committed, other bytes.
  EXPECT_EQ(Deliver(connection, Serialize(AsHeader(collision), AccountsBody(3))).verdict,
            Verdict::kDrop);

  ASSERT_EQ(CreateAccounts(client, connection).verdict, Verdict::kReply);
  RequestHeader stale = client.NextHeader(kCreateAccounts);
  stale.request -= 2;
  EXPECT_EQ(Deliver(connection, Serialize(AsHeader(stale), AccountsBody(1))).verdict,
            Verdict::kDrop);
  EXPECT_EQ(executor_.calls, 2);
}

TEST_F(ReplicaProtocolTest, HigherSessionNumberIsDropped) {
  const ConnectionId connection = Open();
  TestClient client(7);
  Register(client, connection);
  RequestHeader header = client.NextHeader(kCreateAccounts);
  header.session += 1;
  EXPECT_EQ(Deliver(connection, Serialize(AsHeader(header), AccountsBody(1))).verdict,
            Verdict::kDrop);
}

TEST_F(ReplicaProtocolTest, NonZeroTimestampAndViewAheadAreDropped) {
  const ConnectionId connection = Open();
  TestClient client(7);
  Register(client, connection);
  RequestHeader header = client.NextHeader(kCreateAccounts);
  header.timestamp = 1;
  EXPECT_EQ(Deliver(connection, Serialize(AsHeader(header), AccountsBody(1))).verdict,
            Verdict::kDrop);
  header = client.NextHeader(kCreateAccounts);
  header.frame.view = 1;
  EXPECT_EQ(Deliver(connection, Serialize(AsHeader(header), AccountsBody(1))).verdict,
            Verdict::kDrop);
  EXPECT_EQ(executor_.calls, 0);
}

TEST_F(ReplicaProtocolTest, InvalidHeaderIsDroppedAndTheConnectionKept) {
  const ConnectionId connection = Open();
  TestClient client(7);
  RequestHeader header = client.NextHeader(kRegister);
  header.reserved[3] = 1;
  const std::vector<uint8_t> body(kRegisterRequestBodySize, 0);
  const Decision decision = Deliver(connection, Serialize(AsHeader(header), body));
  EXPECT_EQ(decision.verdict, Verdict::kDrop);
  EXPECT_TRUE(decision.closes.empty());
  Register(client, connection);
}

TEST_F(ReplicaProtocolTest, RegisterOfOtherSizeThan512IsDropped) {
  const ConnectionId connection = Open();
  TestClient client(7);
  const std::vector<uint8_t> body(128, 0);
  const Decision decision =
      Deliver(connection, Serialize(AsHeader(client.NextHeader(kRegister)), body));
  EXPECT_EQ(decision.verdict, Verdict::kDrop);
}

// ---- Evictions: all eight reasons ------------------------------------------------------------

TEST_F(ReplicaProtocolTest, EvictsNoSessionForARequestWithoutRegister) {
  const ConnectionId connection = Open();
  TestClient client(7);
  client.set_session(1);
  ExpectEviction(Deliver(connection, client.Request(kCreateAccounts, AccountsBody(1))),
                 connection, 7, EvictionReason::kNoSession);
}

TEST_F(ReplicaProtocolTest, EvictsClientReleaseTooLowForRequestsAndPings) {
  const ConnectionId connection = Open();
  TestClient client(7, MakeRelease(0, 16, 3));
  ExpectEviction(Deliver(connection, client.Register()), connection, 7,
                 EvictionReason::kClientReleaseTooLow);
  ExpectEviction(Deliver(connection, client.Ping()), connection, 7,
                 EvictionReason::kClientReleaseTooLow);
  TestClient oldest_served(8, kReleaseClientMin);
  const ConnectionId other = Open();
  EXPECT_EQ(Deliver(other, oldest_served.Register()).verdict, Verdict::kReply);
}

TEST_F(ReplicaProtocolTest, EvictsClientReleaseTooHighForRequestsAndPings) {
  const ConnectionId connection = Open();
  TestClient client(7, MakeRelease(0, 17, 10));
  ExpectEviction(Deliver(connection, client.Register()), connection, 7,
                 EvictionReason::kClientReleaseTooHigh);
  ExpectEviction(Deliver(connection, client.Ping()), connection, 7,
                 EvictionReason::kClientReleaseTooHigh);
}

TEST_F(ReplicaProtocolTest, EvictsInvalidRequestOperation) {
  const ConnectionId connection = Open();
  TestClient client(7);
  Register(client, connection);
  ExpectEviction(Deliver(connection, client.Request(148, {})), connection, 7,
                 EvictionReason::kInvalidRequestOperation);
  TestClient unregistered(8);
  unregistered.set_session(1);
  const ConnectionId other = Open();
  ExpectEviction(Deliver(other, unregistered.Request(255, {})), other, 8,
                 EvictionReason::kInvalidRequestOperation);
}

TEST_F(ReplicaProtocolTest, EvictsInvalidRequestBodyEvenBeforeSessionChecks) {
  const ConnectionId connection = Open();
  TestClient client(7);
  Register(client, connection);
  std::vector<uint8_t> body = AccountsBody(1);
  body[sizeof(Account)] = 0;  // Trailer padding must be 0xFF.
  ExpectEviction(Deliver(connection, client.Request(kCreateAccounts, body)), connection, 7,
                 EvictionReason::kInvalidRequestBody);
  // Unregistered: the body is judged first (§9.1 note).
  TestClient unregistered(8);
  unregistered.set_session(1);
  const ConnectionId other = Open();
  ExpectEviction(Deliver(other, unregistered.Request(kCreateAccounts, {})), other, 8,
                 EvictionReason::kInvalidRequestBody);
  EXPECT_EQ(executor_.calls, 0);
}

TEST_F(ReplicaProtocolTest, EvictsInvalidRequestBodySizeAboveTheLimit) {
  Make({.batch_size_limit = kBatchSizeLimitMin});
  const ConnectionId connection = Open();
  TestClient client(7);
  Register(client, connection);
  // 29 accounts fit 3,840 bytes (29·128 + 128); 30 do not.
  EXPECT_EQ(CreateAccounts(client, connection, 29).verdict, Verdict::kReply);
  ExpectEviction(CreateAccounts(client, connection, 30), connection, 7,
                 EvictionReason::kInvalidRequestBodySize);
}

TEST_F(ReplicaProtocolTest, EvictsInvalidRequestBodySizeForARegisterWithoutBody) {
  const ConnectionId connection = Open();
  TestClient client(7);
  ExpectEviction(Deliver(connection, Serialize(AsHeader(client.NextHeader(kRegister)), {})),
                 connection, 7, EvictionReason::kInvalidRequestBodySize);
  // An old client's register without body is told its release is too low instead.
  TestClient old_client(8, MakeRelease(0, 15, 3));
  const ConnectionId other = Open();
  ExpectEviction(Deliver(other, Serialize(AsHeader(old_client.NextHeader(kRegister)), {})),
                 other, 8, EvictionReason::kClientReleaseTooLow);
}

TEST_F(ReplicaProtocolTest, EvictsSessionTooLow) {
  const ConnectionId connection = Open();
  TestClient first(7);
  Register(first, connection);  // Session 1.
  TestClient client(8);
  const ConnectionId other = Open();
  Register(client, other);  // Session 2.
  ASSERT_EQ(client.session(), 2u);
  client.set_session(1);
  ExpectEviction(CreateAccounts(client, other), other, 8, EvictionReason::kSessionTooLow);
}

TEST_F(ReplicaProtocolTest, EvictsSessionReleaseMismatch) {
  const ConnectionId connection = Open();
  TestClient client(7);
  Register(client, connection);
  client.set_release(MakeRelease(0, 17, 0));
  ExpectEviction(CreateAccounts(client, connection), connection, 7,
                 EvictionReason::kSessionReleaseMismatch);
}

// ---- Pings -----------------------------------------------------------------------------------

TEST_F(ReplicaProtocolTest, PingIsAnsweredWithAPong) {
  const ConnectionId connection = Open();
  TestClient client(7);
  const Decision decision = Deliver(connection, client.Ping(123456789, 0));
  ASSERT_EQ(decision.verdict, Verdict::kPong);
  ASSERT_EQ(decision.sends.size(), 1u);
  const auto pong = HeaderAs<PongClientHeader>(ParseHeader(*decision.sends[0].message));
  EXPECT_TRUE(ValidatePongClient(pong).ok());
  EXPECT_EQ(pong.frame.size, kHeaderSize);
  EXPECT_EQ(pong.frame.view, 0u);
  EXPECT_EQ(pong.frame.replica, 0u);
  EXPECT_EQ(pong.frame.release, kReleaseServer);
  EXPECT_EQ(pong.ping_timestamp_monotonic, 123456789u);
}

TEST_F(ReplicaProtocolTest, PingWithACommittedSessionNumberButNoSessionIsEvicted) {
  const ConnectionId connection = Open();
  TestClient registered(7);
  Register(registered, connection);
  TestClient stranger(8);
  const ConnectionId other = Open();
  ExpectEviction(Deliver(other, stranger.Ping(1, /*session=*/1)), other, 8,
                 EvictionReason::kNoSession);
  // A session number above the commit number gets a normal pong.
  EXPECT_EQ(Deliver(other, stranger.Ping(1, /*session=*/1'000'000)).verdict, Verdict::kPong);
  // A registered client's session is not checked.
  EXPECT_EQ(Deliver(connection, registered.Ping(1, /*session=*/5)).verdict, Verdict::kPong);
}

TEST_F(ReplicaProtocolTest, InvalidPingIsDroppedButStillBindsTheConnection) {
  const ConnectionId connection = Open();
  TestClient client(7);
  PingClientHeader ping = HeaderAs<PingClientHeader>(ParseHeader(client.Ping()));
  ping.frame.view = 1;
  EXPECT_EQ(Deliver(connection, Serialize(AsHeader(ping), {})).verdict, Verdict::kDrop);
  EXPECT_EQ(protocol_->connections().ClientOf(connection), 7u);
}

// ---- Session table ---------------------------------------------------------------------------

TEST_F(ReplicaProtocolTest, RegisterBeyondClientsMaxEvictsTheLeastRecentlyCommittedSession) {
  std::vector<TestClient> clients;
  std::vector<ConnectionId> connections;
  for (uint32_t i = 0; i < kClientsMaxDefault; i++) {
    clients.emplace_back(100 + i);
    connections.push_back(Open());
    Register(clients.back(), connections.back());
  }
  ASSERT_EQ(protocol_->sessions().size(), kClientsMaxDefault);
  // The oldest commits a request and becomes young; the second oldest only pings (not activity).
  ASSERT_EQ(CreateAccounts(clients[0], connections[0]).verdict, Verdict::kReply);
  ASSERT_EQ(Deliver(connections[1], clients[1].Ping()).verdict, Verdict::kPong);

  TestClient newcomer(999);
  const ConnectionId connection = Open();
  Register(newcomer, connection);
  EXPECT_EQ(protocol_->sessions().size(), kClientsMaxDefault);
  EXPECT_EQ(protocol_->sessions().Find(101), nullptr);
  EXPECT_NE(protocol_->sessions().Find(100), nullptr);

  ExpectEviction(Deliver(connections[1], clients[1].Ping()), connections[1], 101,
                 EvictionReason::kNoSession);
  ExpectEviction(CreateAccounts(clients[1], connections[1]), connections[1], 101,
                 EvictionReason::kNoSession);
  EXPECT_EQ(CreateAccounts(clients[0], connections[0]).verdict, Verdict::kReply);
  EXPECT_EQ(CreateAccounts(clients[2], connections[2]).verdict, Verdict::kReply);
}

// ---- Connection binding (§2.3) ---------------------------------------------------------------

TEST_F(ReplicaProtocolTest, SecondClientIdOnAConnectionClosesIt) {
  const ConnectionId connection = Open();
  TestClient a(7);
  TestClient b(8);
  Register(a, connection);
  const Decision decision = Deliver(connection, b.Register());
  EXPECT_EQ(decision.verdict, Verdict::kClose);
  EXPECT_EQ(decision.closes, (absl::InlinedVector<ConnectionId, 1>{connection}));
  EXPECT_TRUE(decision.sends.empty());
  EXPECT_EQ(protocol_->sessions().Find(8), nullptr);
  // The closed connection is forgotten: anything later on it is refused.
  EXPECT_EQ(Deliver(connection, a.Ping()).verdict, Verdict::kClose);
}

TEST_F(ReplicaProtocolTest, PingOnANewConnectionReplacesTheOldOne) {
  const ConnectionId old_connection = Open();
  TestClient client(7);
  Register(client, old_connection);
  const ConnectionId new_connection = Open();
  const Decision pong = Deliver(new_connection, client.Ping());
  ASSERT_EQ(pong.verdict, Verdict::kPong);
  EXPECT_EQ(pong.closes, (absl::InlinedVector<ConnectionId, 1>{old_connection}));
  const Decision reply = CreateAccounts(client, new_connection);
  ASSERT_EQ(reply.verdict, Verdict::kReply);
  EXPECT_EQ(reply.sends[0].connection, new_connection);
}

TEST_F(ReplicaProtocolTest, RequestOnASecondConnectionIsAnsweredOnTheFirst) {
  const ConnectionId first = Open();
  TestClient client(7);
  Register(client, first);
  const ConnectionId second = Open();
  const Decision reply = CreateAccounts(client, second);
  ASSERT_EQ(reply.verdict, Verdict::kReply);
  ASSERT_EQ(reply.sends.size(), 1u);
  EXPECT_EQ(reply.sends[0].connection, first);
  // Once the first closes, the second one becomes the client's connection.
  protocol_->OnConnectionClosed(first);
  const Decision next = CreateAccounts(client, second);
  ASSERT_EQ(next.verdict, Verdict::kReply);
  EXPECT_EQ(next.sends[0].connection, second);
}

// ---- Hostile inputs: dropped or closed, never a crash -----------------------------------------

TEST_F(ReplicaProtocolTest, ClientZeroIsDropped) {
  const ConnectionId connection = Open();
  TestClient zero(0);
  EXPECT_EQ(Deliver(connection, zero.Register()).verdict, Verdict::kDrop);
  EXPECT_EQ(Deliver(connection, zero.Ping()).verdict, Verdict::kDrop);
  zero.set_session(1);
  EXPECT_EQ(Deliver(connection, zero.Request(kCreateAccounts, AccountsBody(1))).verdict,
            Verdict::kDrop);
  EXPECT_EQ(protocol_->sessions().size(), 0u);
}

TEST_F(ReplicaProtocolTest, CommandZeroAndUnknownCommandsCloseTheConnection) {
  for (uint8_t command : {0, 25, 255}) {
    const ConnectionId connection = Open();
    Header header{};
    header.frame.release = kReleaseServer;
    header.frame.command = static_cast<Command>(command);
    EXPECT_EQ(Deliver(connection, Serialize(header, {})).verdict, Verdict::kClose)
        << int{command};
  }
}

TEST_F(ReplicaProtocolTest, ReplicaCommandsAndRepliesSentToTheReplicaAreDropped) {
  const ConnectionId connection = Open();
  for (Command command : {Command::kPing, Command::kPongClient, Command::kReply,
                          Command::kDeprecated12, Command::kEviction, Command::kPrepare}) {
    Header header{};
    header.frame.release = kReleaseServer;
    header.frame.command = command;
    const Decision decision = Deliver(connection, Serialize(header, {}));
    EXPECT_EQ(decision.verdict, Verdict::kDrop) << CommandName(command);
    EXPECT_TRUE(decision.closes.empty());
  }
}

TEST_F(ReplicaProtocolTest, Operation128IsNeverExecuted) {
  const ConnectionId connection = Open();
  TestClient client(7);
  Register(client, connection);
  EXPECT_EQ(Deliver(connection, client.Request(128, {})).verdict, Verdict::kDrop);
  ExpectEviction(Deliver(connection, client.Request(128, AccountsBody(1))), connection, 7,
                 EvictionReason::kInvalidRequestBody);
  EXPECT_EQ(executor_.calls, 0);
}

TEST_F(ReplicaProtocolTest, VsrOperationsFromClientsAreDropped) {
  const ConnectionId connection = Open();
  TestClient client(7);
  Register(client, connection);
  for (uint8_t operation : {0, 1, 3, 4, 5, 6, 7, 127}) {
    EXPECT_EQ(Deliver(connection, client.Request(operation, {})).verdict, Verdict::kDrop)
        << int{operation};
  }
}

TEST_F(ReplicaProtocolTest, NonZeroRegisterBodyIsDropped) {
  const ConnectionId connection = Open();
  TestClient client(7);
  std::vector<uint8_t> body(kRegisterRequestBodySize, 0);
  body[0] = 1;  // batch_size_limit must be 0.
  EXPECT_EQ(Deliver(connection, client.Send(client.NextHeader(kRegister), body)).verdict,
            Verdict::kDrop);
  body[0] = 0;
  body[200] = 1;
  EXPECT_EQ(Deliver(connection, client.Send(client.NextHeader(kRegister), body)).verdict,
            Verdict::kDrop);
  EXPECT_EQ(protocol_->sessions().size(), 0u);
}

TEST_F(ReplicaProtocolTest, FrameErrorsCloseTheConnection) {
  TestClient client(7);
  std::vector<uint8_t> bad_header = client.Register();
  bad_header[200] ^= 1;
  std::vector<uint8_t> bad_body = client.Register();
  bad_body[300] ^= 1;
  std::vector<uint8_t> truncated = client.Register();
  truncated.resize(400);
  const std::vector<uint8_t> short_message(100, 0);
  TestClient other_cluster(7, kReleaseServer, /*cluster=*/5);
  for (const auto& message :
       {bad_header, bad_body, truncated, short_message, other_cluster.Register()}) {
    const ConnectionId connection = Open();
    const Decision decision = Deliver(connection, message);
    EXPECT_EQ(decision.verdict, Verdict::kClose) << decision.note;
    EXPECT_TRUE(decision.sends.empty());
  }
  EXPECT_EQ(protocol_->sessions().size(), 0u);
}

// A framed message skips only the header checksum: the body checksum, the size and the
// cluster are still checked, and a valid one is answered exactly as by OnMessage().
TEST_F(ReplicaProtocolTest, FramedMessagesAreJudgedAsOnMessageButTheHeaderChecksum) {
  TestClient client(7);
  const ConnectionId connection = Open();
  const std::vector<uint8_t> request = client.Register();
  const Decision framed = protocol_->OnFramedMessage(connection, request, kNow);
  ASSERT_EQ(framed.verdict, Verdict::kReply) << framed.note;
  // The duplicate through OnMessage gets the identical stored reply.
  const Decision again = Deliver(connection, request);
  ASSERT_EQ(again.verdict, Verdict::kDuplicate) << again.note;
  EXPECT_EQ(*again.sends.at(0).message, *framed.sends.at(0).message);

  TestClient other(8);
  std::vector<uint8_t> bad_body = other.Register();
  bad_body[300] ^= 1;
  std::vector<uint8_t> truncated = other.Register();
  truncated.resize(400);
  TestClient other_cluster(9, kReleaseServer, /*cluster=*/5);
  for (const auto& message : {bad_body, truncated, other_cluster.Register()}) {
    const ConnectionId fresh = Open();
    const Decision decision = protocol_->OnFramedMessage(fresh, message, kNow);
    EXPECT_EQ(decision.verdict, Verdict::kClose) << decision.note;
    EXPECT_TRUE(decision.sends.empty());
  }
}

TEST_F(ReplicaProtocolTest, NonZeroReservedFrameFieldsAreDroppedWithTheConnectionKept) {
  const ConnectionId connection = Open();
  TestClient client(7);
  const auto with = [&](auto mutate) {
    Header header = ParseHeader(client.Ping());
    mutate(header.frame);
    return Serialize(header, {});
  };
  for (const std::vector<uint8_t>& message :
       {with([](Frame& f) { f.epoch = 1; }), with([](Frame& f) { f.protocol = 1; }),
        with([](Frame& f) { f.nonce_reserved = 1; }),
        with([](Frame& f) { f.checksum_padding = 1; }),
        with([](Frame& f) { f.reserved_frame[11] = 1; })}) {
    const Decision decision = Deliver(connection, message);
    EXPECT_EQ(decision.verdict, Verdict::kDrop) << decision.note;
    EXPECT_TRUE(decision.closes.empty());
  }
  EXPECT_EQ(Deliver(connection, client.Ping()).verdict, Verdict::kPong);
}

TEST_F(ReplicaProtocolTest, RandomlyMutatedMessagesNeverCrash) {
  const uint64_t seed = 20261122;
  std::mt19937_64 random(seed);
  TestClient client(7);
  ConnectionId current = Open();
  Register(client, current);
  std::vector<std::vector<uint8_t>> corpus = {
      client.Ping(), client.Request(kCreateAccounts, AccountsBody(3)),
      client.Request(kLookupAccounts, LookupBody(1000)), client.Register()};
  int verdicts[6] = {};
  for (int round = 0; round < 3000; round++) {
    std::vector<uint8_t> message = corpus[random() % corpus.size()];
    Header header = ParseHeader(message);
    // Mutate fields after the checksum, then re-seal, so that the checks behind the checksum
    // are what gets exercised.
    const int flips = 1 + random() % 3;
    for (int i = 0; i < flips; i++) {
      const size_t offset = 16 + random() % (kHeaderSize - 16);
      reinterpret_cast<uint8_t*>(&header)[offset] = static_cast<uint8_t>(random());
    }
    std::vector<uint8_t> body(message.begin() + kHeaderSize, message.end());
    if (!body.empty() && random() % 2 == 0) body[random() % body.size()] ^= 0xFF;
    header.frame.size = kHeaderSize + body.size();
    const ConnectionId connection = random() % 4 == 0 ? Open() : current;
    const Decision decision = protocol_->OnMessage(connection, Serialize(header, body), kNow);
    verdicts[static_cast<int>(decision.verdict)]++;
    for (const Send& send : decision.sends) ASSERT_GE(send.message->size(), kHeaderSize);
    for (ConnectionId closed : decision.closes) {
      if (closed == current) current = Open();  // Reconnect, as a real client would.
    }
  }
  // Both outcomes of a broken message must have been reached: dropped and closed.
  EXPECT_GT(verdicts[static_cast<int>(Verdict::kDrop)], 0) << "seed " << seed;
  EXPECT_GT(verdicts[static_cast<int>(Verdict::kClose)], 0) << "seed " << seed;
}

// ---- Several replicas (§9.1 step 3, §9.5) ----------------------------------------------------

class ThreeReplicasTest : public ReplicaProtocolTest {
 protected:
  void SetUp() override { Make({.replica_count = 3}); }
};

TEST_F(ThreeReplicasTest, BackupForwardsARegisterAndTheReplyComesFromPrimaryAndBackup) {
  const ConnectionId at_primary = Open(0);
  const ConnectionId at_backup = Open(1);
  TestClient client(7);
  ASSERT_EQ(Deliver(at_primary, client.Ping()).verdict, Verdict::kPong);
  const Decision decision = Deliver(at_backup, client.Register());
  ASSERT_EQ(decision.verdict, Verdict::kReply) << decision.note;
  ASSERT_EQ(decision.sends.size(), 2u);
  EXPECT_EQ(decision.sends[0].connection, at_primary);
  EXPECT_EQ(decision.sends[1].connection, at_backup);
  EXPECT_EQ(*decision.sends[0].message, *decision.sends[1].message);
  EXPECT_EQ(ParseHeader(*decision.sends[0].message).frame.replica, 0);
}

TEST_F(ThreeReplicasTest, BackupAnswersDuplicatesItselfAndDropsUnknownClients) {
  const ConnectionId at_primary = Open(0);
  const ConnectionId at_backup = Open(2);
  TestClient client(7);
  const std::vector<uint8_t> register_request = client.Register();
  client.OnReply(*Deliver(at_primary, register_request).sends[0].message);
  const Decision duplicate = Deliver(at_backup, register_request);
  ASSERT_EQ(duplicate.verdict, Verdict::kDuplicate);
  EXPECT_EQ(duplicate.sends[0].connection, at_backup);

  TestClient stranger(8);
  stranger.set_session(1);
  const ConnectionId stranger_at_backup = Open(2);
  const Decision dropped =
      Deliver(stranger_at_backup, stranger.Request(kCreateAccounts, AccountsBody(1)));
  EXPECT_EQ(dropped.verdict, Verdict::kDrop);  // The primary would evict; backups never do.
  TestClient too_new(9, MakeRelease(1, 0, 0));
  EXPECT_EQ(Deliver(Open(1), too_new.Register()).verdict, Verdict::kDrop);
  EXPECT_EQ(Deliver(Open(1), too_new.Ping()).verdict, Verdict::kDrop);
}

TEST_F(ThreeReplicasTest, BackupsAnswerPingsWithTheirOwnIndex) {
  TestClient client(7);
  for (uint8_t replica = 0; replica < 3; replica++) {
    const Decision decision = Deliver(Open(replica), client.Ping());
    ASSERT_EQ(decision.verdict, Verdict::kPong);
    EXPECT_EQ(ParseHeader(*decision.sends[0].message).frame.replica, replica);
  }
}

TEST_F(ThreeReplicasTest, ViewChangeMovesThePrimaryAndRaisesTheViewOfStoredReplies) {
  const ConnectionId at_zero = Open(0);
  const ConnectionId at_one = Open(1);
  TestClient client(7);
  ASSERT_EQ(Deliver(at_one, client.Ping()).verdict, Verdict::kPong);
  Register(client, at_zero);
  const std::vector<uint8_t> request = client.Request(kCreateAccounts, AccountsBody(1));
  const Decision first = Deliver(at_zero, request);
  ASSERT_EQ(first.verdict, Verdict::kReply);
  client.OnReply(*first.sends[0].message);

  protocol_->SetView(1);
  EXPECT_EQ(protocol_->primary(), 1);
  const Decision duplicate = Deliver(at_one, request);
  ASSERT_EQ(duplicate.verdict, Verdict::kDuplicate);
  const auto original = HeaderAs<ReplyHeader>(ParseHeader(*first.sends[0].message));
  const auto raised = HeaderAs<ReplyHeader>(ParseHeader(*duplicate.sends[0].message));
  EXPECT_EQ(raised.frame.view, 1u);
  EXPECT_EQ(raised.context, original.context);
  EXPECT_EQ(raised.frame.replica, original.frame.replica);
  EXPECT_NE(raised.frame.checksum, original.frame.checksum);
  EXPECT_TRUE(DecodeHeader(std::span(*duplicate.sends[0].message).first(kHeaderSize), 0).ok());

  // Replica 0 is a backup now: it forwards, and the new primary prepares with view 1.
  const Decision next = CreateAccounts(client, at_zero);
  ASSERT_EQ(next.verdict, Verdict::kReply);
  const auto reply = HeaderAs<ReplyHeader>(ParseHeader(*next.sends[0].message));
  EXPECT_EQ(reply.frame.view, 1u);
  EXPECT_EQ(reply.frame.replica, 1);
  // A request whose view is ahead of the cluster is dropped everywhere.
  RequestHeader ahead = client.NextHeader(kCreateAccounts);
  ahead.frame.view = 2;
  EXPECT_EQ(Deliver(at_one, Serialize(AsHeader(ahead), AccountsBody(1))).verdict,
            Verdict::kDrop);
}

}  // namespace
}  // namespace tb::replica
