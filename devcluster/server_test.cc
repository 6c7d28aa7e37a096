#include "devcluster/server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "client_core/header.h"
#include "client_core/multi_batch.h"
#include "client_core/testing/events.h"
#include "client_core/types.h"
#include "client_core/replica/echo_executor.h"
#include "client_core/replica/testing/test_client.h"
#include "devcluster/testing/server_fixture.h"
#include "devcluster/testing/tcp_client.h"
#include "gtest/gtest.h"

namespace tb::devcluster {
namespace {

using client_core::testing::ParseHeader;
using client_core::testing::Serialize;
using client_core::testing::CreateAccountsBody;
using replica::testing::TestClient;
using testing::TcpClient;

constexpr uint8_t kCreateAccounts = 146;

Command CommandOf(const std::vector<uint8_t>& message) { return ParseHeader(message).frame.command; }

class ServerTest : public ::testing::Test {
 protected:
  void StartServer(ServerOptions options = {}) {
    ASSERT_TRUE(cluster_.Start(&executor_, std::move(options)).ok());
    server_ = &cluster_.server();
  }
  uint16_t port(size_t replica = 0) const { return cluster_.port(replica); }

  // Registers `client` over `tcp` and follows the reply.
  void Register(TcpClient& tcp, TestClient& client) {
    ASSERT_TRUE(tcp.Send(client.Register()));
    std::optional<std::vector<uint8_t>> reply = tcp.Receive();
    ASSERT_TRUE(reply.has_value());
    ASSERT_EQ(CommandOf(*reply), Command::kReply);
    client.OnReply(*reply);
  }

  EchoExecutor executor_;  // Outlives the server.
  testing::RunningServer cluster_;
  Server* server_ = nullptr;  // cluster_'s, once started.
};

TEST_F(ServerTest, ServesRegisterRequestsAndPingsOverTcp) {
  StartServer();
  ASSERT_NE(port(), 0);
  TcpClient tcp(port());
  ASSERT_TRUE(tcp.connected());
  TestClient client(42);
  Register(tcp, client);
  EXPECT_EQ(client.session(), 1u);

  ASSERT_TRUE(tcp.Send(client.Request(kCreateAccounts, CreateAccountsBody(3))));
  std::optional<std::vector<uint8_t>> reply = tcp.Receive();
  ASSERT_TRUE(reply.has_value());
  const auto header = HeaderAs<ReplyHeader>(ParseHeader(*reply));
  EXPECT_TRUE(ValidateReply(header).ok());
  EXPECT_EQ(header.request, 1u);
  auto results = DecodeMultiBatch(std::span(*reply).subspan(kHeaderSize), sizeof(CreateResult));
  ASSERT_TRUE(results.ok());
  ASSERT_EQ((*results)[0].size(), 3 * sizeof(CreateResult));
  CreateResult last;
  std::memcpy(&last, (*results)[0].data() + 2 * sizeof(CreateResult), sizeof(last));
  EXPECT_EQ(last.status, 0xFFFFFFFFu);
  EXPECT_EQ(last.timestamp, header.timestamp);
  client.OnReply(*reply);

  ASSERT_TRUE(tcp.Send(client.Ping(77)));
  std::optional<std::vector<uint8_t>> pong = tcp.Receive();
  ASSERT_TRUE(pong.has_value());
  ASSERT_EQ(CommandOf(*pong), Command::kPongClient);
  EXPECT_EQ(HeaderAs<PongClientHeader>(ParseHeader(*pong)).ping_timestamp_monotonic, 77u);
  EXPECT_EQ(server_->stats().replies, 2u);
}

TEST_F(ServerTest, AnswersADuplicateWithTheSameBytes) {
  StartServer();
  TcpClient tcp(port());
  TestClient client(42);
  Register(tcp, client);
  const std::vector<uint8_t> request = client.Request(kCreateAccounts, CreateAccountsBody(1));
  ASSERT_TRUE(tcp.Send(request));
  ASSERT_TRUE(tcp.Send(request));
  const auto first = tcp.Receive();
  const auto second = tcp.Receive();
  ASSERT_TRUE(first.has_value() && second.has_value());
  EXPECT_EQ(*first, *second);
  EXPECT_EQ(server_->stats().duplicates, 1u);
}

TEST_F(ServerTest, FramesMessagesSplitIntoSingleBytesAndMessagesSharingOneWrite) {
  StartServer();
  TcpClient tcp(port());
  TestClient client(42);
  for (uint8_t byte : client.Register()) ASSERT_TRUE(tcp.Send(std::span(&byte, 1)));
  auto reply = tcp.Receive();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(CommandOf(*reply), Command::kReply);
  std::vector<uint8_t> pings;
  for (uint64_t i = 1; i <= 50; i++) {
    const std::vector<uint8_t> ping = client.Ping(i, 1);
    pings.insert(pings.end(), ping.begin(), ping.end());
  }
  ASSERT_TRUE(tcp.Send(pings));
  for (uint64_t i = 1; i <= 50; i++) {
    auto pong = tcp.Receive();
    ASSERT_TRUE(pong.has_value());
    EXPECT_EQ(HeaderAs<PongClientHeader>(ParseHeader(*pong)).ping_timestamp_monotonic, i);
  }
}

TEST_F(ServerTest, ClosesTheConnectionOnFrameErrorsOnly) {
  StartServer();
  TestClient client(42);
  TcpClient healthy(port());
  Register(healthy, client);

  std::vector<uint8_t> bad_checksum = TestClient(43).Register();
  bad_checksum[150] ^= 1;
  Header oversize{};
  oversize.frame.release = kReleaseServer;
  oversize.frame.command = Command::kPingClient;
  std::vector<uint8_t> oversize_bytes = Serialize(oversize, {});
  Header patched = ParseHeader(oversize_bytes);
  patched.frame.size = kMessageSizeMax + 1;
  SetHeaderChecksum(patched);
  std::memcpy(oversize_bytes.data(), &patched, kHeaderSize);
  std::vector<uint8_t> other_cluster = TestClient(44, kReleaseServer, /*cluster=*/9).Ping();
  Header unknown{};
  unknown.frame.release = kReleaseServer;
  unknown.frame.command = static_cast<Command>(25);

  for (const auto& bytes : {bad_checksum, oversize_bytes, other_cluster, Serialize(unknown, {})}) {
    TcpClient tcp(port());
    ASSERT_TRUE(tcp.Send(bytes));
    EXPECT_FALSE(tcp.Receive().has_value());
  }
  // The other connection and the server carry on.
  ASSERT_TRUE(healthy.Send(client.Ping(5)));
  auto pong = healthy.Receive();
  ASSERT_TRUE(pong.has_value());
  EXPECT_EQ(CommandOf(*pong), Command::kPongClient);
}

TEST_F(ServerTest, DroppedMessagesGetNoAnswerAndTheConnectionStays) {
  StartServer();
  TcpClient tcp(port());
  TestClient client(42);
  Register(tcp, client);
  RequestHeader ahead = client.NextHeader(kCreateAccounts);
  ahead.frame.view = 3;
  ASSERT_TRUE(tcp.Send(Serialize(AsHeader(ahead), CreateAccountsBody(1))));
  ASSERT_TRUE(tcp.Send(client.Ping(9)));
  // A connection is ordered: the first answer is the pong, so the request got none.
  auto answer = tcp.Receive();
  ASSERT_TRUE(answer.has_value());
  EXPECT_EQ(CommandOf(*answer), Command::kPongClient);
}

TEST_F(ServerTest, RefusesConnectionsBeyondTheLimit) {
  StartServer({.connections_max = 2});
  TestClient a(1), b(2), c(3);
  TcpClient first(port()), second(port());
  ASSERT_TRUE(first.Send(a.Ping()));
  ASSERT_TRUE(first.Receive().has_value());
  ASSERT_TRUE(second.Send(b.Ping()));
  ASSERT_TRUE(second.Receive().has_value());
  TcpClient third(port());
  third.Send(c.Ping());
  EXPECT_FALSE(third.Receive().has_value());
  EXPECT_EQ(server_->stats().connections_refused, 1u);
  EXPECT_EQ(server_->stats().connections_open, 2u);
}

TEST_F(ServerTest, DropsRepliesWhenToldAndAnswersTheRetry) {
  StartServer();
  TcpClient tcp(port());
  TestClient client(42);
  Register(tcp, client);
  server_->SetFaults({.reply_drop_probability = 1});
  const std::vector<uint8_t> request = client.Request(kCreateAccounts, CreateAccountsBody(1));
  ASSERT_TRUE(tcp.Send(request));
  ASSERT_TRUE(tcp.Send(client.Ping(3)));
  auto answer = tcp.Receive();
  ASSERT_TRUE(answer.has_value());
  EXPECT_EQ(CommandOf(*answer), Command::kPongClient);
  server_->SetFaults({});
  ASSERT_TRUE(tcp.Send(request));  // The retry: same bytes, committed once.
  answer = tcp.Receive();
  ASSERT_TRUE(answer.has_value());
  EXPECT_EQ(CommandOf(*answer), Command::kReply);
  const ServerStats stats = server_->stats();
  EXPECT_EQ(stats.replies_lost, 1u);
  EXPECT_EQ(stats.duplicates, 1u);
}

TEST_F(ServerTest, DelayedRepliesArriveAfterLaterPongs) {
  StartServer();
  TcpClient tcp(port());
  TestClient client(42);
  Register(tcp, client);
  server_->SetFaults({.reply_delay = absl::Milliseconds(50)});
  ASSERT_TRUE(tcp.Send(client.Request(kCreateAccounts, CreateAccountsBody(1))));
  ASSERT_TRUE(tcp.Send(client.Ping(3)));
  auto first = tcp.Receive();
  auto second = tcp.Receive();
  ASSERT_TRUE(first.has_value() && second.has_value());
  EXPECT_EQ(CommandOf(*first), Command::kPongClient);
  EXPECT_EQ(CommandOf(*second), Command::kReply);
}

TEST_F(ServerTest, PausedServerIgnoresMessagesUntilResumed) {
  StartServer();
  TcpClient tcp(port());
  TestClient client(42);
  server_->Pause();
  ASSERT_TRUE(tcp.Send(client.Ping(1)));
  // Pause() returns once applied, but the ping may still be in flight: wait until it was read.
  while (server_->stats().messages_ignored_paused == 0) std::this_thread::yield();
  server_->Resume();
  ASSERT_TRUE(tcp.Send(client.Ping(2)));
  auto pong = tcp.Receive();
  ASSERT_TRUE(pong.has_value());
  EXPECT_EQ(HeaderAs<PongClientHeader>(ParseHeader(*pong)).ping_timestamp_monotonic, 2u);
}

TEST_F(ServerTest, ResetsConnectionsOnDemandAndByChance) {
  StartServer();
  TestClient client(42);
  TcpClient tcp(port());
  Register(tcp, client);
  server_->ResetConnections();
  EXPECT_FALSE(tcp.Receive().has_value());

  // The session survives: a new connection continues it.
  TcpClient again(port());
  ASSERT_TRUE(again.Send(client.Request(kCreateAccounts, CreateAccountsBody(1))));
  auto reply = again.Receive();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(CommandOf(*reply), Command::kReply);
  client.OnReply(*reply);

  server_->SetFaults({.connection_reset_probability = 1});
  ASSERT_TRUE(again.Send(client.Request(kCreateAccounts, CreateAccountsBody(1))));
  EXPECT_FALSE(again.Receive().has_value());
  EXPECT_EQ(server_->stats().replies, 3u);  // It committed; only the answer was lost.
}

TEST_F(ServerTest, ThreeReplicasFollowTheViewAndForwardToThePrimary) {
  StartServer({.addresses = {{"127.0.0.1", 0}, {"127.0.0.1", 0}, {"127.0.0.1", 0}}});
  ASSERT_EQ(server_->ports().size(), 3u);
  server_->AdvanceView();
  EXPECT_EQ(server_->view(), 1u);
  TestClient client(42);
  TcpClient zero(port(0)), one(port(1));
  ASSERT_TRUE(one.Send(client.Ping(1)));
  auto pong = one.Receive();
  ASSERT_TRUE(pong.has_value());
  EXPECT_EQ(ParseHeader(*pong).frame.view, 1u);
  EXPECT_EQ(ParseHeader(*pong).frame.replica, 1);
  // Replica 0 is a backup in view 1: it forwards the register, and both answer.
  ASSERT_TRUE(zero.Send(client.Register()));
  auto from_primary = one.Receive();
  auto from_backup = zero.Receive();
  ASSERT_TRUE(from_primary.has_value() && from_backup.has_value());
  EXPECT_EQ(*from_primary, *from_backup);
  EXPECT_EQ(ParseHeader(*from_primary).frame.view, 1u);
  EXPECT_EQ(ParseHeader(*from_primary).frame.replica, 1);
  EXPECT_EQ(server_->ListeningAddresses(),
            absl::StrCat("127.0.0.1:", port(0), ",127.0.0.1:", port(1), ",127.0.0.1:", port(2)));
}

TEST_F(ServerTest, DisconnectsAPeerThatDoesNotReadItsAnswers) {
  StartServer({.send_queue_bytes_max = kMessageSizeMax});
  TcpClient tcp(port());
  TestClient client(42);
  const std::vector<uint8_t> ping = client.Ping(1);
  std::vector<uint8_t> burst;
  for (int i = 0; i < 4096; i++) burst.insert(burst.end(), ping.begin(), ping.end());
  // Pongs pile up in the server once the socket buffers are full; the bound closes the
  // connection, after which sending fails.
  for (int round = 0; round < 64 && tcp.Send(burst); round++) {
  }
  while (server_->stats().slow_readers_closed == 0) std::this_thread::yield();
  EXPECT_EQ(server_->stats().connections_open, 0u);
}

}  // namespace
}  // namespace tb::devcluster
