#include "client_core/tcp_transport.h"

#include <chrono>
#include <cstring>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include <asio.hpp>

#include "client_core/checksum.h"
#include "client_core/clock.h"
#include "client_core/header.h"
#include "client_core/multi_batch.h"
#include "client_core/operation.h"
#include "client_core/session.h"
#include "client_core/testing/events.h"
#include "client_core/types.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tb {
namespace {

constexpr u128 kCluster = 42;
constexpr uint32_t kLimit = 32'512;

// How the fake replica spoils its next reply, to exercise the transport's framing checks.
enum class Fault { kNone, kBadHeaderChecksum, kWrongCluster, kBadBodyChecksum, kOversizedSize };

// A tiny replica on 127.0.0.1:0: answers register with a RegisterResult, every other request with
// a reply whose body echoes the request body, and pings with pongs. Everything it sends is valid
// unless `next_reply_fault` says otherwise.
class FakeReplica {
 public:
  FakeReplica(asio::io_context& io, uint8_t index)
      : acceptor_(io, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)),
        index_(index) {
    Accept();
  }
  uint16_t port() const { return acceptor_.local_endpoint().port(); }
  ReplicaAddress address() const { return {"127.0.0.1", port()}; }
  // Closes every accepted connection (the listener stays).
  void DropConnections() {
    for (auto& peer : peers_) peer->Close();
    peers_.clear();
  }
  void Stop() {
    asio::error_code ignored;
    acceptor_.close(ignored);
    DropConnections();
  }

  Fault next_reply_fault = Fault::kNone;
  int accepted = 0;
  int requests = 0;
  int pings = 0;
  int pings_per_connection_last = 0;

 private:
  struct Peer : std::enable_shared_from_this<Peer> {
    Peer(asio::ip::tcp::socket socket, FakeReplica* replica)
        : socket(std::move(socket)), replica(replica) {}
    void Close() {
      asio::error_code ignored;
      socket.close(ignored);
      replica = nullptr;
    }
    void Read() {
      asio::async_read(socket, asio::buffer(header), [self = shared_from_this()](
                                                         asio::error_code error, size_t) {
        if (error || self->replica == nullptr) return;
        uint32_t size;
        std::memcpy(&size, self->header.data() + 96, 4);
        ASSERT_GE(size, kHeaderSize);
        ASSERT_LE(size, kMessageSizeMax);
        self->body.resize(size - kHeaderSize);
        asio::async_read(self->socket, asio::buffer(self->body),
                         [self](asio::error_code error, size_t) {
                           if (error || self->replica == nullptr) return;
                           self->replica->OnMessage(*self);
                           self->Read();
                         });
      });
    }
    void Write(std::vector<uint8_t> bytes) {
      outgoing.push_back(std::move(bytes));
      if (outgoing.size() == 1) WriteNext();
    }
    void WriteNext() {
      asio::async_write(socket, asio::buffer(outgoing.front()),
                        [self = shared_from_this()](asio::error_code error, size_t) {
                          if (error) return;
                          self->outgoing.pop_front();
                          if (!self->outgoing.empty()) self->WriteNext();
                        });
    }
    asio::ip::tcp::socket socket;
    FakeReplica* replica;
    std::array<uint8_t, kHeaderSize> header{};
    std::vector<uint8_t> body;
    std::deque<std::vector<uint8_t>> outgoing;
    int pings = 0;
  };

  void Accept() {
    acceptor_.async_accept([this](asio::error_code error, asio::ip::tcp::socket socket) {
      if (error) return;
      accepted++;
      auto peer = std::make_shared<Peer>(std::move(socket), this);
      peers_.push_back(peer);
      peer->Read();
      Accept();
    });
  }

  void OnMessage(Peer& peer) {
    absl::StatusOr<Header> header = DecodeHeader(peer.header, kCluster);
    ASSERT_TRUE(header.ok()) << header.status();
    ASSERT_TRUE(ValidateBody(*header, peer.body).ok());
    if (header->frame.command == Command::kPingClient) {
      pings++;
      pings_per_connection_last = ++peer.pings;
      const PingClientHeader ping = HeaderAs<PingClientHeader>(*header);
      ASSERT_TRUE(ValidatePingClient(ping).ok());
      PongClientHeader pong{};
      pong.frame.cluster = kCluster;
      pong.frame.release = kReleaseServer;
      pong.frame.command = Command::kPongClient;
      pong.frame.replica = index_;
      pong.ping_timestamp_monotonic = ping.ping_timestamp_monotonic;
      Header pong_header = AsHeader(pong);
      SetChecksums(pong_header, {});
      std::vector<uint8_t> bytes(kHeaderSize);
      std::memcpy(bytes.data(), &pong_header, kHeaderSize);
      return peer.Write(std::move(bytes));
    }
    ASSERT_EQ(header->frame.command, Command::kRequest);
    requests++;
    const RequestHeader request = HeaderAs<RequestHeader>(*header);
    ASSERT_TRUE(ValidateRequest(request).ok());
    std::vector<uint8_t> body;
    if (request.operation == static_cast<uint8_t>(Operation::kRegister)) {
      RegisterResult result{};
      result.batch_size_limit = kLimit;
      body.resize(sizeof(result));
      std::memcpy(body.data(), &result, sizeof(result));
    } else {
      body = peer.body;
    }
    ReplyHeader reply{};
    reply.frame.cluster = kCluster;
    reply.frame.release = request.frame.release;
    reply.frame.command = Command::kReply;
    reply.request_checksum = request.frame.checksum;
    reply.client = request.client;
    reply.op = 10 + request.request;
    reply.commit = reply.op;
    reply.timestamp = 1'000'000 + request.request;
    reply.request = request.request;
    reply.operation = request.operation;
    SetReplyChecksums(reply, body);
    Header reply_header = AsHeader(reply);
    switch (std::exchange(next_reply_fault, Fault::kNone)) {
      case Fault::kNone: break;
      case Fault::kBadHeaderChecksum: reply_header.frame.checksum ^= 1; break;
      case Fault::kWrongCluster:
        reply_header.frame.cluster = kCluster + 1;
        SetHeaderChecksum(reply_header);
        break;
      case Fault::kBadBodyChecksum: body[0] ^= 1; break;
      case Fault::kOversizedSize:
        reply_header.frame.size = kMessageSizeMax + 1;
        SetHeaderChecksum(reply_header);
        break;
    }
    std::vector<uint8_t> bytes(kHeaderSize + body.size());
    std::memcpy(bytes.data(), &reply_header, kHeaderSize);
    std::memcpy(bytes.data() + kHeaderSize, body.data(), body.size());
    peer.Write(std::move(bytes));
  }

  asio::ip::tcp::acceptor acceptor_;
  uint8_t index_;
  std::vector<std::shared_ptr<Peer>> peers_;
};

// Runs the loop until `done()` holds. The bound only keeps a broken build from hanging the suite;
// no assertion depends on how long anything took.
bool RunUntil(asio::io_context& io, const std::function<bool()>& done) {
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!done()) {
    if (std::chrono::steady_clock::now() > give_up) return false;
    io.restart();
    io.run_one_for(std::chrono::milliseconds(50));
  }
  return true;
}

// Ticks a session every 10 ms on the loop, as the pool does.
class Ticker {
 public:
  Ticker(asio::io_context& io, Session* session) : timer_(io), session_(session) { Schedule(); }
  // A tick whose timer had already fired is queued with no error and cannot be cancelled: it
  // finds `alive_` false and leaves the freed ticker alone.
  ~Ticker() {
    *alive_ = false;
    timer_.cancel();
  }

 private:
  void Schedule() {
    timer_.expires_after(std::chrono::milliseconds(kTickMs));
    timer_.async_wait([this, alive = alive_](asio::error_code error) {
      if (error || !*alive) return;
      session_->Tick();
      Schedule();
    });
  }
  asio::steady_timer timer_;
  Session* session_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

std::vector<uint8_t> OneAccountBody() { return client_core::testing::CreateAccountsBody(1, 77); }

MessageBytes PingBytes() {
  PingClientHeader ping{};
  ping.frame.cluster = kCluster;
  ping.frame.release = kReleaseClient;
  ping.frame.command = Command::kPingClient;
  ping.client = 1;
  Header header = AsHeader(ping);
  SetChecksums(header, {});
  std::vector<uint8_t> bytes(kHeaderSize);
  std::memcpy(bytes.data(), &header, kHeaderSize);
  return MakeMessageBytes(std::move(bytes));
}

class NullReceiver final : public TransportReceiver {
 public:
  void OnConnected(uint32_t replica) override { connected++; }
  void OnMessage(uint32_t, const Header&, std::span<const uint8_t>) override { messages++; }
  int connected = 0;
  int messages = 0;
};

// ---- Addresses and options --------------------------------------------------------------------

TEST(TcpTransport, CreateRejectsInvalidOptions) {
  asio::io_context io;
  TcpTransportOptions no_addresses;
  EXPECT_EQ(TcpTransport::Create(&io, no_addresses).status().code(),
            absl::StatusCode::kInvalidArgument);
  TcpTransportOptions zero_queue{.addresses = {{"127.0.0.1", 1}}, .send_queue_max = 0};
  EXPECT_EQ(TcpTransport::Create(&io, zero_queue).status().code(),
            absl::StatusCode::kInvalidArgument);
  TcpTransportOptions delays{.addresses = {{"127.0.0.1", 1}},
                             .connect_delay_min = absl::Seconds(2),
                             .connect_delay_max = absl::Seconds(1)};
  EXPECT_EQ(TcpTransport::Create(&io, delays).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// ---- A session over real sockets --------------------------------------------------------------

struct Cluster {
  explicit Cluster(int replicas) {
    for (int i = 0; i < replicas; i++) {
      this->replicas.push_back(std::make_unique<FakeReplica>(io, static_cast<uint8_t>(i)));
    }
    TcpTransportOptions options{.cluster = kCluster, .seed = 5};
    for (const auto& replica : this->replicas) options.addresses.push_back(replica->address());
    transport = *TcpTransport::Create(&io, options);
    session = std::make_unique<Session>(SessionOptions{.cluster = kCluster, .seed = 9},
                                        transport.get(), SystemClock(), nullptr);
    ticker = std::make_unique<Ticker>(io, session.get());
    transport->Start(session.get());
    session->Register();
  }
  ~Cluster() {
    ticker.reset();
    transport->Shutdown();
    for (auto& replica : replicas) replica->Stop();
    io.restart();
    io.run();  // Every pending handler finishes: shutdown leaves no work behind.
  }

  asio::io_context io;
  std::vector<std::unique_ptr<FakeReplica>> replicas;
  std::unique_ptr<TcpTransport> transport;
  std::unique_ptr<Session> session;
  std::unique_ptr<Ticker> ticker;
};

TEST(TcpTransport, SessionRegistersAndGetsRepliesOverTcp) {
  Cluster cluster(1);
  ASSERT_TRUE(RunUntil(cluster.io, [&] { return cluster.session->ready(); }));
  EXPECT_EQ(cluster.session->batch_size_limit(), kLimit);
  EXPECT_TRUE(cluster.transport->connected(0));

  std::optional<absl::StatusOr<SessionReply>> result;
  const std::vector<uint8_t> body = OneAccountBody();
  ASSERT_TRUE(cluster.session
                  ->SendRequest(146, body,
                                [&](absl::StatusOr<SessionReply> reply) {
                                  result.emplace(std::move(reply));
                                })
                  .ok());
  ASSERT_TRUE(RunUntil(cluster.io, [&] { return result.has_value(); }));
  ASSERT_TRUE(result->ok()) << result->status();
  EXPECT_EQ((*result)->body, body);
  EXPECT_EQ((*result)->op, 11u);
  ASSERT_TRUE(RunUntil(cluster.io, [&] { return cluster.replicas[0]->pings >= 2; }));

  const TcpTransport::Stats stats = cluster.transport->stats();
  EXPECT_EQ(stats.connects, 1u);
  EXPECT_EQ(stats.frame_errors, 0u);
  EXPECT_EQ(stats.messages_dropped, 0u);
  EXPECT_GE(stats.messages_received, 2u);
  EXPECT_GE(stats.messages_sent, 4u);  // Register, its ping, the on-connect ping, the request.
}

TEST(TcpTransport, ThreeReplicasAllConnectedAndPinged) {
  Cluster cluster(3);
  ASSERT_TRUE(RunUntil(cluster.io, [&] {
    return cluster.session->ready() && cluster.replicas[0]->pings > 0 &&
           cluster.replicas[1]->pings > 0 && cluster.replicas[2]->pings > 0;
  }));
  for (uint32_t replica = 0; replica < 3; replica++) {
    EXPECT_TRUE(cluster.transport->connected(replica));
    EXPECT_EQ(cluster.replicas[replica]->accepted, 1);
  }
  // The register went to the primary (view 0 -> replica 0) and one backup.
  EXPECT_EQ(cluster.replicas[0]->requests, 1);
  EXPECT_EQ(cluster.replicas[1]->requests + cluster.replicas[2]->requests, 1);
}

class TcpTransportFraming : public ::testing::TestWithParam<Fault> {};

TEST_P(TcpTransportFraming, BadFrameClosesTheConnectionAndTheSessionRecovers) {
  Cluster cluster(1);
  cluster.replicas[0]->next_reply_fault = GetParam();  // Spoils the register reply.
  // The transport closes, reconnects (a ping binds the new connection) and the register retry
  // is answered on the new connection.
  ASSERT_TRUE(RunUntil(cluster.io, [&] { return cluster.session->ready(); }));
  EXPECT_EQ(cluster.transport->stats().frame_errors, 1u);
  EXPECT_EQ(cluster.transport->stats().connects, 2u);
  EXPECT_EQ(cluster.replicas[0]->accepted, 2);
  EXPECT_GE(cluster.replicas[0]->requests, 2);
}

INSTANTIATE_TEST_SUITE_P(Faults, TcpTransportFraming,
                         ::testing::Values(Fault::kBadHeaderChecksum, Fault::kWrongCluster,
                                           Fault::kBadBodyChecksum, Fault::kOversizedSize));

TEST(TcpTransport, ReconnectsAfterThePeerClosesAndPingsTheNewConnection) {
  Cluster cluster(1);
  ASSERT_TRUE(RunUntil(cluster.io, [&] { return cluster.session->ready(); }));
  cluster.replicas[0]->DropConnections();
  ASSERT_TRUE(RunUntil(cluster.io, [&] {
    return cluster.replicas[0]->accepted == 2 && cluster.replicas[0]->pings_per_connection_last >= 1;
  }));
  EXPECT_EQ(cluster.transport->stats().disconnects, 1u);
  std::optional<absl::StatusOr<SessionReply>> result;
  ASSERT_TRUE(cluster.session
                  ->SendRequest(146, OneAccountBody(),
                                [&](absl::StatusOr<SessionReply> reply) {
                                  result.emplace(std::move(reply));
                                })
                  .ok());
  ASSERT_TRUE(RunUntil(cluster.io, [&] { return result.has_value(); }));
  EXPECT_TRUE(result->ok());
}

TEST(TcpTransport, ResolvesHostNames) {
  asio::io_context io;
  FakeReplica replica(io, 0);
  auto transport = *TcpTransport::Create(
      &io, {.cluster = kCluster, .addresses = {{"localhost", replica.port()}}});
  NullReceiver receiver;
  transport->Start(&receiver);
  ASSERT_TRUE(RunUntil(io, [&] { return receiver.connected == 1; }));
  transport->Send(0, PingBytes());
  ASSERT_TRUE(RunUntil(io, [&] { return receiver.messages == 1; }));  // The pong.
  transport->Shutdown();
  replica.Stop();
  io.restart();
  io.run();
}

// ---- Bounds and shutdown ----------------------------------------------------------------------

uint16_t UnusedPort() {
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
  return acceptor.local_endpoint().port();  // Closed on return: connecting is refused.
}

TEST(TcpTransport, KeepsAtMostTheConnectingQueueWhileNotConnected) {
  asio::io_context io;
  auto transport = *TcpTransport::Create(
      &io, {.cluster = kCluster, .addresses = {{"127.0.0.1", UnusedPort()}},
            .connecting_queue_max = 2});
  NullReceiver receiver;
  transport->Send(0, PingBytes());  // Before Start(): dropped.
  transport->Start(&receiver);
  for (int i = 0; i < 5; i++) transport->Send(0, PingBytes());
  EXPECT_EQ(transport->stats().messages_dropped, 4u);  // 1 before Start + 3 over the bound.
  // The refused connection drops the two queued messages too, then waits to retry.
  ASSERT_TRUE(RunUntil(io, [&] { return transport->stats().messages_dropped == 6; }));
  EXPECT_FALSE(transport->connected(0));
  EXPECT_EQ(receiver.connected, 0);
  transport->Shutdown();
  io.restart();
  io.run();  // Returns: the reconnect timer was cancelled.
}

TEST(TcpTransport, RefusesToQueueBeyondTheSendQueueBound) {
  asio::io_context io;
  FakeReplica replica(io, 0);
  auto transport = *TcpTransport::Create(
      &io, {.cluster = kCluster, .addresses = {replica.address()}, .send_queue_max = 4});
  NullReceiver receiver;
  transport->Start(&receiver);
  ASSERT_TRUE(RunUntil(io, [&] { return transport->connected(0); }));
  for (int i = 0; i < 20; i++) transport->Send(0, PingBytes());
  EXPECT_EQ(transport->stats().messages_dropped, 16u);
  ASSERT_TRUE(RunUntil(io, [&] { return transport->stats().messages_sent == 4; }));
  ASSERT_TRUE(RunUntil(io, [&] { return receiver.messages == 4; }));  // Four pongs.
  transport.reset();  // Destroying shuts down; pending handlers finish without the receiver.
  replica.Stop();
  io.restart();
  io.run();
  EXPECT_EQ(receiver.messages, 4);
}

TEST(TcpTransport, NoReceiverCallbackAfterShutdown) {
  asio::io_context io;
  FakeReplica replica(io, 0);
  auto transport =
      *TcpTransport::Create(&io, {.cluster = kCluster, .addresses = {replica.address()}});
  NullReceiver receiver;
  transport->Start(&receiver);
  ASSERT_TRUE(RunUntil(io, [&] { return transport->connected(0); }));
  transport->Send(0, PingBytes());
  transport->Shutdown();  // The pong may be on its way; it must not be delivered.
  EXPECT_FALSE(transport->connected(0));
  transport->Send(0, PingBytes());  // Dropped, no crash.
  replica.Stop();
  io.restart();
  io.run();
  EXPECT_EQ(receiver.messages, 0);
  EXPECT_EQ(receiver.connected, 1);
}

}  // namespace
}  // namespace tb
