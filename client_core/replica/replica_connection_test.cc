// ReplicaListener and ReplicaConnection over real loopback sockets: framing, gathered writes in
// order, the write queue's byte bound, peer close, framing errors and refused connections.
#include "client_core/replica/replica_connection.h"

#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <thread>
#include <vector>

#include "asio.hpp"
#include "client_core/replica/replica_listener.h"
#include "client_core/replica/testing/test_descriptors.h"
#include "client_core/replica/testing/test_client.h"
#include "gtest/gtest.h"

namespace tb::replica {
namespace {

using testing::TestClient;

// Records what the listener and its connections report; keeps open connections by id and drops
// them on close, as a server does.
class Recorder final : public ReplicaListenerHandler, public ReplicaConnectionHandler {
 public:
  void OnAccepted(std::shared_ptr<ReplicaConnection> connection) override {
    accepted++;
    if (refuse) return;
    const ConnectionId id = next_id++;
    open[id] = connection;
    connection->Start(id, this);
  }
  void OnAcceptError(const absl::Status&) override { accept_errors++; }
  void OnMessage(ReplicaConnection& connection, std::span<const uint8_t> message) override {
    messages.emplace_back(message.begin(), message.end());
    if (close_on_message) connection.Close();
  }
  void OnClosed(ReplicaConnection& connection, CloseReason reason,
                const absl::Status&) override {
    closes.push_back(reason);
    open.erase(connection.id());
  }

  bool refuse = false;
  bool close_on_message = false;
  int accepted = 0;
  int accept_errors = 0;
  ConnectionId next_id = 1;
  std::map<ConnectionId, std::shared_ptr<ReplicaConnection>> open;
  std::vector<std::vector<uint8_t>> messages;
  std::vector<CloseReason> closes;
};

MessageBytes Numbered(uint32_t number, size_t size) {
  auto bytes = std::make_shared<std::vector<uint8_t>>(size, static_cast<uint8_t>(number));
  std::memcpy(bytes->data(), &number, sizeof(number));
  return bytes;
}

class ReplicaConnectionTest : public ::testing::Test {
 protected:
  void Listen(ReplicaConnectionOptions options = {}) {
    auto listener = ReplicaListener::Listen(io_, {.host = "127.0.0.1", .connection = options});
    ASSERT_TRUE(listener.ok()) << listener.status();
    listener_ = *listener;
    listener_->Start(&recorder_);
  }
  void TearDown() override {
    if (listener_ != nullptr) listener_->Close();
    auto open = recorder_.open;
    for (auto& [id, connection] : open) connection->Close();
    io_.restart();
    io_.poll();
  }
  // Runs the server's io_context until `done` holds; false after 10 s.
  bool RunUntil(const std::function<bool()>& done) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      if (io_.stopped()) io_.restart();
      io_.run_one_for(std::chrono::milliseconds(10));
    }
    return true;
  }
  // A blocking client socket connected to the listener and accepted by it.
  asio::ip::tcp::socket Connect() {
    asio::ip::tcp::socket socket(client_io_);
    socket.connect({asio::ip::make_address("127.0.0.1"), listener_->port()});
    const int accepted = recorder_.accepted;
    EXPECT_TRUE(RunUntil([&] { return recorder_.accepted > accepted; }));
    return socket;
  }
  std::shared_ptr<ReplicaConnection> OnlyConnection() {
    EXPECT_EQ(recorder_.open.size(), 1u);
    return recorder_.open.empty() ? nullptr : recorder_.open.begin()->second;
  }

  // Two clients' register requests in one write; returns them in the order sent.
  static std::vector<std::vector<uint8_t>> SendTwoRegistersInOneWrite(
      asio::ip::tcp::socket& client) {
    TestClient first(1);
    TestClient second(2);
    std::vector<std::vector<uint8_t>> messages = {first.Register(), second.Register()};
    std::vector<uint8_t> bytes = messages[0];
    bytes.insert(bytes.end(), messages[1].begin(), messages[1].end());
    asio::write(client, asio::buffer(bytes));
    return messages;
  }

  asio::io_context io_;
  asio::io_context client_io_;
  Recorder recorder_;
  std::shared_ptr<ReplicaListener> listener_;
};

TEST_F(ReplicaConnectionTest, FramesMessagesSharingOneWrite) {
  Listen();
  asio::ip::tcp::socket client = Connect();
  const std::vector<std::vector<uint8_t>> sent = SendTwoRegistersInOneWrite(client);
  ASSERT_TRUE(RunUntil([&] { return recorder_.messages.size() == 2; }));
  EXPECT_EQ(recorder_.messages, sent);
}

TEST_F(ReplicaConnectionTest, GathersQueuedMessagesIntoFewWritesAndDeliversThemInOrder) {
  Listen();
  asio::ip::tcp::socket client = Connect();
  std::shared_ptr<ReplicaConnection> connection = OnlyConnection();
  ASSERT_NE(connection, nullptr);
  constexpr uint32_t kCount = 200;
  constexpr size_t kSize = 300;
  std::vector<uint8_t> received(kCount * kSize);
  std::atomic<bool> read_done{false};
  std::thread reader([&] {
    asio::error_code error;
    asio::read(client, asio::buffer(received), error);
    EXPECT_FALSE(error) << error.message();
    read_done = true;
  });
  for (uint32_t i = 0; i < kCount; i++) connection->Send(Numbered(i, kSize));
  ASSERT_TRUE(RunUntil([&] { return read_done && connection->write_queue_bytes() == 0; }));
  reader.join();
  for (uint32_t i = 0; i < kCount; i++) {
    EXPECT_EQ(std::memcmp(received.data() + i * kSize, Numbered(i, kSize)->data(), kSize), 0)
        << "message " << i;
  }
  // The first Send() writes alone; the other 199 follow in writes of at most 64.
  EXPECT_EQ(connection->writes_started(), 1u + (kCount - 1 + 63) / 64);
  EXPECT_FALSE(connection->closed());
}

TEST_F(ReplicaConnectionTest, ClosesASlowReaderAtTheByteBound) {
  constexpr uint64_t kBound = 1 << 20;
  Listen({.write_queue_bytes_max = kBound});
  asio::ip::tcp::socket client = Connect();  // Never reads.
  std::shared_ptr<ReplicaConnection> connection = OnlyConnection();
  ASSERT_NE(connection, nullptr);
  for (uint32_t i = 0; i < 2'000 && !connection->closed(); i++) {
    connection->Send(Numbered(i, 64 * 1024));
    EXPECT_LE(connection->write_queue_bytes(), kBound);
    io_.poll();
  }
  ASSERT_TRUE(connection->closed());
  EXPECT_EQ(recorder_.closes, std::vector<CloseReason>{CloseReason::kSlowReader});
  EXPECT_TRUE(recorder_.open.empty());
  connection->Send(Numbered(0, 256));  // Ignored once closed.
  io_.poll();
  EXPECT_EQ(recorder_.closes.size(), 1u);
}

TEST_F(ReplicaConnectionTest, ConnectionsAddTheirQueuedBytesToASharedCountUntilClosed) {
  std::atomic<uint64_t> all{0};
  Listen({.write_queue_bytes_max = 64 << 20, .write_queue_bytes_all = &all});
  asio::ip::tcp::socket first_client = Connect();  // Neither client reads.
  asio::ip::tcp::socket second_client = Connect();
  ASSERT_EQ(recorder_.open.size(), 2u);
  std::shared_ptr<ReplicaConnection> first = recorder_.open.begin()->second;
  std::shared_ptr<ReplicaConnection> second = std::next(recorder_.open.begin())->second;
  // Enough that the kernel's buffers fill and both queues hold bytes.
  for (uint32_t i = 0; i < 300; i++) {
    first->Send(Numbered(i, 64 * 1024));
    second->Send(Numbered(i, 32 * 1024));
    io_.poll();
    EXPECT_EQ(all.load(), first->write_queue_bytes() + second->write_queue_bytes());
  }
  ASSERT_GT(first->write_queue_bytes(), 0u);
  ASSERT_GT(second->write_queue_bytes(), 0u);
  first->Close();  // With a write in flight: its bytes leave the count at once.
  EXPECT_EQ(all.load(), second->write_queue_bytes());
  io_.poll();
  EXPECT_EQ(all.load(), second->write_queue_bytes());
  second->Close();
  EXPECT_EQ(all.load(), 0u);
  io_.poll();
  EXPECT_EQ(all.load(), 0u);
}

TEST_F(ReplicaConnectionTest, ReportsThePeerClosingOnce) {
  Listen();
  asio::ip::tcp::socket client = Connect();
  std::shared_ptr<ReplicaConnection> connection = OnlyConnection();
  ASSERT_NE(connection, nullptr);
  client.close();
  ASSERT_TRUE(RunUntil([&] { return !recorder_.closes.empty(); }));
  EXPECT_EQ(recorder_.closes, std::vector<CloseReason>{CloseReason::kPeer});
  EXPECT_TRUE(connection->closed());
  connection->Close();
  EXPECT_EQ(recorder_.closes.size(), 1u);
}

TEST_F(ReplicaConnectionTest, FramingErrorClosesTheConnection) {
  Listen();
  asio::ip::tcp::socket client = Connect();
  asio::write(client, asio::buffer(std::vector<uint8_t>(kHeaderSize, 0x5A)));
  ASSERT_TRUE(RunUntil([&] { return !recorder_.closes.empty(); }));
  EXPECT_EQ(recorder_.closes, std::vector<CloseReason>{CloseReason::kFramingError});
  std::vector<uint8_t> byte(1);
  asio::error_code error;
  asio::read(client, asio::buffer(byte), error);
  EXPECT_TRUE(error);
}

TEST_F(ReplicaConnectionTest, AHandlerClosingTheConnectionStopsDeliveryOfTheRestOfTheRead) {
  Listen();
  recorder_.close_on_message = true;
  asio::ip::tcp::socket client = Connect();
  SendTwoRegistersInOneWrite(client);
  ASSERT_TRUE(RunUntil([&] { return !recorder_.closes.empty(); }));
  EXPECT_EQ(recorder_.messages.size(), 1u);
  EXPECT_EQ(recorder_.closes, std::vector<CloseReason>{CloseReason::kLocal});
}

TEST_F(ReplicaConnectionTest, ARefusedConnectionIsClosedWithoutAMessage) {
  Listen();
  recorder_.refuse = true;
  asio::ip::tcp::socket client = Connect();
  std::vector<uint8_t> byte(1);
  asio::error_code error;
  asio::read(client, asio::buffer(byte), error);
  EXPECT_EQ(error, asio::error::eof);
  EXPECT_TRUE(recorder_.closes.empty());  // Never started, so never reported.
}

TEST_F(ReplicaConnectionTest, AFailedAcceptIsReportedAndRetriedAfterTheBackoff) {
  if (!testing::kDescriptorExhaustionSupported) {
    GTEST_SKIP() << "a sanitizer's runtime needs descriptors of its own";
  }
  auto listener = ReplicaListener::Listen(
      io_, {.host = "127.0.0.1", .accept_backoff = absl::Milliseconds(50)});
  ASSERT_TRUE(listener.ok());
  listener_ = *listener;
  listener_->Start(&recorder_);
  testing::DescriptorExhaustion exhaustion;
  exhaustion.FreeOne();
  const int fd = testing::ConnectLoopback(listener_->port());
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(RunUntil([&] { return recorder_.accept_errors > 0; }));
  // Retrying at once would fail thousands of times in this window; with the backoff, a few.
  const auto start = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - start < std::chrono::milliseconds(200)) {
    io_.run_one_for(std::chrono::milliseconds(10));
  }
  EXPECT_LE(recorder_.accept_errors, 2 + 200 / 50);
  EXPECT_EQ(recorder_.accepted, 0);
  exhaustion.Release();
  ASSERT_TRUE(RunUntil([&] { return recorder_.accepted == 1; }));
  EXPECT_EQ(recorder_.open.size(), 1u);
  close(fd);
}

TEST(ReplicaListener, RefusesAnAddressItCannotBind) {
  asio::io_context io;
  auto first = ReplicaListener::Listen(io, {.host = "127.0.0.1"});
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(ReplicaListener::Listen(io, {.host = "127.0.0.1", .port = (*first)->port()})
                .status()
                .code(),
            absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace tb::replica
