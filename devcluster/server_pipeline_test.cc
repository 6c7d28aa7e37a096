// The server with the pipeline model on (FaultOptions::pipeline): admission in arrival order, at
// most prepares_max in flight, replies in op order, registers in the pipeline, pings not.
// Assertions are on events and counters; the only clock-based ones are lower bounds (a reply
// never arrives before the latency it must wait).
#include <chrono>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "client_core/header.h"
#include "client_core/multi_batch.h"
#include "client_core/testing/events.h"
#include "client_core/types.h"
#include "client_core/replica/echo_executor.h"
#include "client_core/replica/testing/test_client.h"
#include "devcluster/server.h"
#include "devcluster/testing/server_fixture.h"
#include "devcluster/testing/tcp_client.h"
#include "gtest/gtest.h"

namespace tb::devcluster {
namespace {

using client_core::testing::ParseHeader;
using client_core::testing::CreateAccountsBody;
using replica::testing::TestClient;
using testing::TcpClient;
using Clock = std::chrono::steady_clock;

constexpr uint8_t kCreateAccounts = 146;
constexpr absl::Duration kForever = absl::Minutes(1);  // Never elapses during a test.

// Echoes, and records for each execution its body size and the number of pipeline commits the
// server had made when it ran (on the io thread).
class RecordingExecutor final : public Executor {
 public:
  struct Execution {
    size_t body_size;
    uint64_t commits_before;
  };

  ExecuteResult Execute(uint8_t operation, std::span<const uint8_t> body,
                        uint64_t now_ns) override {
    const uint64_t commits = commits_ ? commits_() : 0;
    {
      std::lock_guard lock(mutex_);
      executions_.push_back({body.size(), commits});
    }
    return echo_.Execute(operation, body, now_ns);
  }
  void set_commits(std::function<uint64_t()> commits) { commits_ = std::move(commits); }
  std::vector<Execution> executions() {
    std::lock_guard lock(mutex_);
    return executions_;
  }

 private:
  EchoExecutor echo_;
  std::function<uint64_t()> commits_;
  std::mutex mutex_;
  std::vector<Execution> executions_;
};

class ServerPipelineTest : public ::testing::Test {
 protected:
  void StartServer(ServerOptions options = {}) {
    // Runs inside Execute(), on the io thread, where stats() does not wait.
    executor_.set_commits([this] { return cluster_.server().stats().pipeline_commits; });
    ASSERT_TRUE(cluster_.Start(&executor_, std::move(options)).ok());
    server_ = &cluster_.server();
  }
  uint16_t port() const { return cluster_.port(); }

  void SetPipeline(absl::Duration latency, uint32_t prepares_max, uint32_t requests_queued_max) {
    FaultOptions faults;
    faults.pipeline = {.prepare_latency = latency,
                       .prepares_max = prepares_max,
                       .requests_queued_max = requests_queued_max};
    server_->SetFaults(faults);
  }

  // Sends `bytes` and waits until the server has read them, so arrival order is the call order.
  void SendAndWaitArrival(TcpClient& tcp, const std::vector<uint8_t>& bytes) {
    const uint64_t received = server_->stats().messages_received;
    ASSERT_TRUE(tcp.Send(bytes));
    for (int i = 0; i < 30000 && server_->stats().messages_received == received; i++) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    ASSERT_EQ(server_->stats().messages_received, received + 1);
  }

  // Receives one reply and checks it answers `client`'s request in flight; returns its op.
  uint64_t ReceiveReply(TcpClient& tcp, TestClient& client) {
    std::optional<std::vector<uint8_t>> reply = tcp.Receive();
    EXPECT_TRUE(reply.has_value());
    if (!reply.has_value()) return 0;
    const auto header = HeaderAs<ReplyHeader>(ParseHeader(*reply));
    EXPECT_EQ(header.frame.command, Command::kReply);
    EXPECT_EQ(header.client, client.id());
    client.OnReply(*reply);
    return header.op;
  }

  RecordingExecutor executor_;  // Outlives the server.
  testing::RunningServer cluster_;
  Server* server_ = nullptr;  // cluster_'s, once started.
};

TEST_F(ServerPipelineTest, AdmitsAtMostPreparesMaxInArrivalOrderAndRepliesInOpOrder) {
  StartServer();
  constexpr int kClients = 4;
  std::vector<std::unique_ptr<TcpClient>> tcp;
  std::vector<TestClient> clients;
  for (int i = 0; i < kClients; i++) {
    tcp.push_back(std::make_unique<TcpClient>(port()));
    clients.emplace_back(100 + i);
    ASSERT_TRUE(tcp.back()->Send(clients.back().Register()));
    ReceiveReply(*tcp.back(), clients.back());
  }
  // Set at run time; prepares do not commit until the latency is lowered below.
  SetPipeline(kForever, /*prepares_max=*/2, /*requests_queued_max=*/24);
  std::vector<std::vector<uint8_t>> requests;
  const Clock::time_point first_sent = Clock::now();
  for (int i = 0; i < kClients; i++) {
    requests.push_back(clients[i].Request(kCreateAccounts, CreateAccountsBody(i + 1)));
    SendAndWaitArrival(*tcp[i], requests.back());
  }
  ServerStats stats = server_->stats();
  EXPECT_EQ(stats.pipeline_prepares, 2u);
  EXPECT_EQ(stats.pipeline_requests_queued, 2u);
  std::vector<RecordingExecutor::Execution> executions = executor_.executions();
  ASSERT_EQ(executions.size(), 2u);  // Only the first two arrivals executed, in arrival order.
  EXPECT_EQ(executions[0].body_size, CreateAccountsBody(1).size());
  EXPECT_EQ(executions[1].body_size, CreateAccountsBody(2).size());

  // A retry of a request that is preparing, and one that is queued: ignored, as by a primary.
  SendAndWaitArrival(*tcp[0], requests[0]);
  SendAndWaitArrival(*tcp[3], requests[3]);
  EXPECT_EQ(server_->stats().pipeline_ignored, 2u);

  const absl::Duration latency = absl::Milliseconds(40);
  SetPipeline(latency, 2, 24);
  std::vector<uint64_t> ops;
  std::vector<Clock::duration> elapsed;
  for (int i = 0; i < kClients; i++) {
    ops.push_back(ReceiveReply(*tcp[i], clients[i]));
    elapsed.push_back(Clock::now() - first_sent);
  }
  for (int i = 1; i < kClients; i++) EXPECT_LT(ops[i - 1], ops[i]) << "op order = arrival order";
  executions = executor_.executions();
  ASSERT_EQ(executions.size(), 4u);
  for (int i = 0; i < kClients; i++) {
    EXPECT_EQ(executions[i].body_size, CreateAccountsBody(i + 1).size());
    // At most 2 in flight: the (i+1)-th admission waited for i - 1 commits.
    EXPECT_GE(executions[i].commits_before + 2, static_cast<uint64_t>(i) + 1) << i;
  }
  stats = server_->stats();
  EXPECT_EQ(stats.pipeline_commits, 4u);
  EXPECT_EQ(stats.pipeline_prepares_max_seen, 2u);
  EXPECT_EQ(stats.pipeline_prepares, 0u);
  // Lower bounds: the third and fourth waited for a commit, then for their own latency.
  const auto latency_chrono = absl::ToChronoNanoseconds(latency);
  EXPECT_GE(elapsed[0], latency_chrono);
  EXPECT_GE(elapsed[2], 2 * latency_chrono);
  EXPECT_GE(elapsed[3], 2 * latency_chrono);

  // After the commit, a retry is a duplicate again: answered at once with the stored reply.
  ASSERT_TRUE(tcp[0]->Send(requests[0]));
  std::optional<std::vector<uint8_t>> duplicate = tcp[0]->Receive();
  ASSERT_TRUE(duplicate.has_value());
  EXPECT_EQ(HeaderAs<ReplyHeader>(ParseHeader(*duplicate)).op, ops[0]);
}

TEST_F(ServerPipelineTest, RegistersArePreparedAndPingsAreNot) {
  ServerOptions options;
  options.faults.pipeline = {.prepare_latency = kForever, .prepares_max = 1};
  StartServer(options);
  TcpClient first_tcp(port()), second_tcp(port());
  TestClient first(1), second(2);
  SendAndWaitArrival(first_tcp, first.Register());
  EXPECT_EQ(server_->stats().pipeline_prepares, 1u);
  // A ping is answered while the register is preparing.
  ASSERT_TRUE(second_tcp.Send(second.Ping(55)));
  std::optional<std::vector<uint8_t>> pong = second_tcp.Receive();
  ASSERT_TRUE(pong.has_value());
  EXPECT_EQ(ParseHeader(*pong).frame.command, Command::kPongClient);
  SendAndWaitArrival(second_tcp, second.Register());
  EXPECT_EQ(server_->stats().pipeline_requests_queued, 1u);

  SetPipeline(absl::ZeroDuration(), 1, 24);  // Drains in order, then requests bypass it.
  const uint64_t first_op = ReceiveReply(first_tcp, first);
  const uint64_t second_op = ReceiveReply(second_tcp, second);
  EXPECT_LT(first_op, second_op);
  EXPECT_EQ(server_->stats().pipeline_commits, 2u);
  ASSERT_TRUE(first_tcp.Send(first.Request(kCreateAccounts, CreateAccountsBody(1))));
  ReceiveReply(first_tcp, first);
  EXPECT_EQ(server_->stats().pipeline_commits, 2u);  // Off: committed at once.
}

TEST_F(ServerPipelineTest, DropsRequestsBeyondTheRequestQueueAndServesTheirRetry) {
  ServerOptions options;
  options.faults.pipeline = {
      .prepare_latency = kForever, .prepares_max = 1, .requests_queued_max = 1};
  StartServer(options);
  std::vector<std::unique_ptr<TcpClient>> tcp;
  std::vector<TestClient> clients;
  std::vector<std::vector<uint8_t>> registers;
  for (int i = 0; i < 3; i++) {
    tcp.push_back(std::make_unique<TcpClient>(port()));
    clients.emplace_back(10 + i);
    registers.push_back(clients.back().Register());
    SendAndWaitArrival(*tcp.back(), registers.back());
  }
  ServerStats stats = server_->stats();
  EXPECT_EQ(stats.pipeline_prepares, 1u);
  EXPECT_EQ(stats.pipeline_requests_queued, 1u);
  EXPECT_EQ(stats.pipeline_queue_full, 1u);

  SetPipeline(absl::Milliseconds(1), 1, 1);
  ReceiveReply(*tcp[0], clients[0]);
  ReceiveReply(*tcp[1], clients[1]);
  ASSERT_TRUE(tcp[2]->Send(registers[2]));  // The client's retry.
  ReceiveReply(*tcp[2], clients[2]);
  EXPECT_EQ(server_->stats().pipeline_commits, 3u);
}

TEST_F(ServerPipelineTest, ReplyDelayAddsToThePrepareLatency) {
  ServerOptions options;
  options.faults.reply_delay = absl::Milliseconds(30);
  options.faults.pipeline = {.prepare_latency = absl::Milliseconds(30)};
  StartServer(options);
  TcpClient tcp(port());
  TestClient client(5);
  const Clock::time_point sent = Clock::now();
  ASSERT_TRUE(tcp.Send(client.Register()));
  ReceiveReply(tcp, client);
  EXPECT_GE(Clock::now() - sent, std::chrono::milliseconds(60));
  EXPECT_EQ(server_->stats().pipeline_commits, 1u);
}

}  // namespace
}  // namespace tb::devcluster
