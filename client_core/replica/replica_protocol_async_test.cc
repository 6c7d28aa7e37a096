// ReplicaProtocol with an AsyncExecutor: requests in progress, completion, duplicates and the
// failures that drop or evict.
#include <cstring>
#include <memory>
#include <vector>

#include "client_core/header.h"
#include "client_core/multi_batch.h"
#include "client_core/replica/replica_protocol.h"
#include "client_core/replica/testing/test_client.h"
#include "client_core/testing/events.h"
#include "client_core/types.h"
#include "gtest/gtest.h"

namespace tb::replica {
namespace {

using client_core::testing::ParseHeader;
using testing::TestClient;

constexpr uint8_t kCreateAccounts = 146;
constexpr uint64_t kNow = 1'700'000'000'000'000'000ULL;

struct Started {
  uint64_t token;
  u128 client;
  uint8_t operation;
  std::vector<uint8_t> body;
};

class RecordingExecutor final : public AsyncExecutor {
 public:
  void Start(uint64_t token, u128 client, uint8_t operation,
             std::span<const uint8_t> body) override {
    started.push_back({token, client, operation, {body.begin(), body.end()}});
  }
  std::vector<Started> started;
};

std::vector<uint8_t> AccountsBody(int count) { return client_core::testing::CreateAccountsBody(count, 1000); }

// A create_accounts reply body with one empty batch (every account created).
std::vector<uint8_t> EmptyResultBody() {
  const std::span<const uint8_t> batches[] = {std::span<const uint8_t>()};
  return EncodeMultiBatch(sizeof(CreateResult), batches);
}

class ReplicaProtocolAsyncTest : public ::testing::Test {
 protected:
  void SetUp() override { Make({}); }
  void Make(ReplicaProtocolOptions options) {
    protocol_ = std::make_unique<ReplicaProtocol>(options, &executor_);
  }
  ConnectionId Open() {
    const ConnectionId id = next_connection_++;
    protocol_->OnConnectionOpened(id, 0);
    return id;
  }
  void Register(TestClient& client, ConnectionId connection) {
    Decision decision = protocol_->OnMessage(connection, client.Register(), kNow);
    ASSERT_EQ(decision.verdict, Verdict::kReply) << decision.note;
    client.OnReply(*decision.sends.at(0).message);
  }

  RecordingExecutor executor_;
  std::unique_ptr<ReplicaProtocol> protocol_;
  ConnectionId next_connection_ = 1;
};

TEST_F(ReplicaProtocolAsyncTest, RequestIsPendingUntilCompletedThenRepliesWithTheResult) {
  const ConnectionId connection = Open();
  TestClient client(7);
  Register(client, connection);
  const std::vector<uint8_t> request = client.Request(kCreateAccounts, AccountsBody(2));
  Decision decision = protocol_->OnMessage(connection, request, kNow);
  ASSERT_EQ(decision.verdict, Verdict::kPending) << decision.note;
  EXPECT_TRUE(decision.sends.empty());
  ASSERT_EQ(executor_.started.size(), 1u);
  EXPECT_EQ(executor_.started[0].client, client.id());
  EXPECT_EQ(executor_.started[0].operation, kCreateAccounts);
  EXPECT_EQ(executor_.started[0].body.size(), request.size() - kHeaderSize);
  EXPECT_EQ(protocol_->pending_count(), 1u);

  // An identical retry while in progress is dropped and not started again (§9.1 step 13).
  decision = protocol_->OnMessage(connection, request, kNow);
  EXPECT_EQ(decision.verdict, Verdict::kDrop);
  EXPECT_EQ(decision.note, "request in progress");
  EXPECT_EQ(executor_.started.size(), 1u);

  const uint64_t op_before = protocol_->op();
  decision = protocol_->Complete(executor_.started[0].token,
                                 ExecuteResult{.timestamp = 12345, .body = EmptyResultBody()});
  ASSERT_EQ(decision.verdict, Verdict::kReply) << decision.note;
  ASSERT_EQ(decision.sends.size(), 1u);
  EXPECT_EQ(decision.sends[0].connection, connection);
  const auto reply = HeaderAs<ReplyHeader>(ParseHeader(*decision.sends[0].message));
  EXPECT_TRUE(ValidateReply(reply).ok());
  EXPECT_EQ(reply.timestamp, 12345u);
  EXPECT_EQ(reply.op, op_before + 1);
  EXPECT_EQ(reply.request, 1u);
  EXPECT_EQ(reply.frame.size, kHeaderSize + EmptyResultBody().size());
  client.OnReply(*decision.sends[0].message);
  EXPECT_EQ(protocol_->pending_count(), 0u);

  // Now the same bytes are a duplicate: the stored reply, byte for byte.
  const MessageBytes stored = decision.sends[0].message;
  decision = protocol_->OnMessage(connection, request, kNow);
  ASSERT_EQ(decision.verdict, Verdict::kDuplicate);
  EXPECT_EQ(*decision.sends.at(0).message, *stored);

  // The next request chains on the reply.
  decision = protocol_->OnMessage(connection, client.Request(kCreateAccounts, AccountsBody(1)),
                                  kNow);
  EXPECT_EQ(decision.verdict, Verdict::kPending) << decision.note;
}

TEST_F(ReplicaProtocolAsyncTest, DropFailureLetsTheRetryStartAgain) {
  const ConnectionId connection = Open();
  TestClient client(7);
  Register(client, connection);
  const std::vector<uint8_t> request = client.Request(kCreateAccounts, AccountsBody(1));
  ASSERT_EQ(protocol_->OnMessage(connection, request, kNow).verdict, Verdict::kPending);
  Decision decision = protocol_->Complete(executor_.started.at(0).token, CompletionFailure::kDrop);
  EXPECT_EQ(decision.verdict, Verdict::kDrop);
  EXPECT_TRUE(decision.sends.empty());
  decision = protocol_->OnMessage(connection, request, kNow);
  EXPECT_EQ(decision.verdict, Verdict::kPending) << decision.note;
  EXPECT_EQ(executor_.started.size(), 2u);
  EXPECT_NE(executor_.started[0].token, executor_.started[1].token);
}

TEST_F(ReplicaProtocolAsyncTest, SessionLostEvictsWithNoSessionAndLaterMessagesToo) {
  const ConnectionId connection = Open();
  TestClient client(7);
  Register(client, connection);
  const std::vector<uint8_t> request = client.Request(kCreateAccounts, AccountsBody(1));
  ASSERT_EQ(protocol_->OnMessage(connection, request, kNow).verdict, Verdict::kPending);
  Decision decision =
      protocol_->Complete(executor_.started.at(0).token, CompletionFailure::kSessionLost);
  ASSERT_EQ(decision.verdict, Verdict::kEviction);
  EXPECT_EQ(decision.eviction_reason, EvictionReason::kNoSession);
  ASSERT_EQ(decision.sends.size(), 1u);
  EXPECT_EQ(decision.sends[0].connection, connection);
  const auto eviction = HeaderAs<EvictionHeader>(ParseHeader(*decision.sends[0].message));
  EXPECT_EQ(eviction.client, client.id());
  EXPECT_EQ(eviction.reason, EvictionReason::kNoSession);
  // The retry finds no session.
  decision = protocol_->OnMessage(connection, request, kNow);
  EXPECT_EQ(decision.verdict, Verdict::kEviction);
  EXPECT_EQ(decision.eviction_reason, EvictionReason::kNoSession);
  EXPECT_EQ(executor_.started.size(), 1u);
}

TEST_F(ReplicaProtocolAsyncTest, InvalidBodyFailureEvictsWithInvalidRequestBody) {
  const ConnectionId connection = Open();
  TestClient client(7);
  Register(client, connection);
  ASSERT_EQ(protocol_->OnMessage(connection, client.Request(kCreateAccounts, AccountsBody(1)),
                                 kNow)
                .verdict,
            Verdict::kPending);
  const Decision decision = protocol_->Complete(executor_.started.at(0).token,
                                                CompletionFailure::kInvalidRequestBody);
  ASSERT_EQ(decision.verdict, Verdict::kEviction);
  EXPECT_EQ(decision.eviction_reason, EvictionReason::kInvalidRequestBody);
  EXPECT_EQ(protocol_->sessions().Find(client.id()), nullptr);
}

TEST_F(ReplicaProtocolAsyncTest, CompletionForAnEvictedSessionSendsNothing) {
  Make({.clients_max = 1});
  const ConnectionId first_connection = Open();
  TestClient first(7);
  Register(first, first_connection);
  ASSERT_EQ(protocol_->OnMessage(first_connection, first.Request(kCreateAccounts, AccountsBody(1)),
                                 kNow)
                .verdict,
            Verdict::kPending);
  // A second register pushes the only session out while its request is in progress.
  const ConnectionId second_connection = Open();
  TestClient second(8);
  Register(second, second_connection);
  EXPECT_EQ(protocol_->sessions().Find(first.id()), nullptr);
  Decision decision = protocol_->Complete(executor_.started.at(0).token,
                                          ExecuteResult{.timestamp = 9, .body = EmptyResultBody()});
  EXPECT_EQ(decision.verdict, Verdict::kDrop);
  EXPECT_TRUE(decision.sends.empty());
  EXPECT_EQ(protocol_->pending_count(), 0u);
  // Unknown and repeated tokens are harmless.
  EXPECT_EQ(protocol_->Complete(executor_.started.at(0).token, CompletionFailure::kDrop).verdict,
            Verdict::kDrop);
  EXPECT_EQ(protocol_->Complete(999, CompletionFailure::kSessionLost).verdict, Verdict::kDrop);
}

TEST_F(ReplicaProtocolAsyncTest, RepliesAreSentOnTheConnectionBoundNow) {
  const ConnectionId old_connection = Open();
  TestClient client(7);
  Register(client, old_connection);
  const std::vector<uint8_t> request = client.Request(kCreateAccounts, AccountsBody(1));
  ASSERT_EQ(protocol_->OnMessage(old_connection, request, kNow).verdict, Verdict::kPending);
  // The client reconnects and pings on a new connection; the old one is replaced.
  const ConnectionId new_connection = Open();
  Decision decision = protocol_->OnMessage(new_connection, client.Ping(), kNow);
  ASSERT_EQ(decision.verdict, Verdict::kPong);
  decision = protocol_->Complete(executor_.started.at(0).token,
                                 ExecuteResult{.timestamp = 9, .body = EmptyResultBody()});
  ASSERT_EQ(decision.verdict, Verdict::kReply);
  ASSERT_EQ(decision.sends.size(), 1u);
  EXPECT_EQ(decision.sends[0].connection, new_connection);
}

}  // namespace
}  // namespace tb::replica
