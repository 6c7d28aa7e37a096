// NativeFrontend over real loopback sockets with a Submitter that answers at once: requests,
// the limit it announces, virtual session eviction, and hostile input (frame errors close the
// connection, release and session errors evict, other clients are unaffected). The front end
// runs on an io_context that a thread of the test runs, as tbproxy runs it on the pool's.
#include "proxy/native/native_frontend.h"

#include <asio.hpp>
#include <chrono>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "client_core/header.h"
#include "client_core/multi_batch.h"
#include "client_core/release.h"
#include "client_core/replica/testing/test_client.h"
#include "client_core/replica/testing/test_descriptors.h"
#include "client_core/testing/events.h"
#include "client_core/types.h"
#include "gtest/gtest.h"

namespace tb::proxy {
namespace {

using client_core::testing::CreateAccountsBody;
using client_core::testing::ParseHeader;
using replica::testing::TestClient;

constexpr uint8_t kCreateAccounts = 146;
constexpr uint32_t kLimit = 8 * 1024;

// Answers every create with one "created" result per event, at cluster timestamp 77.
class ImmediateSubmitter final : public Submitter {
 public:
  void Submit(SubmitRequest request, SubmitOptions options, SubmitCallback callback) override {
    {
      absl::MutexLock lock(&mutex_);
      calls_++;
      keys_.push_back(options.ordering_key);
    }
    std::vector<uint8_t> results(request.events.size() / sizeof(Account) * sizeof(CreateResult));
    for (size_t i = 0; i * sizeof(CreateResult) < results.size(); i++) {
      const CreateResult created{.timestamp = 77, .status = 0xFFFFFFFF, .reserved = 0};
      std::memcpy(results.data() + i * sizeof(CreateResult), &created, sizeof(created));
    }
    {
      absl::MutexLock lock(&mutex_);
      if (hold_) {
        held_.emplace_back(std::move(callback), std::move(results));
        return;
      }
    }
    std::move(callback)(SubmitResult{.timestamp = 77, .results = std::move(results)});
  }
  // From now on calls wait for Release() instead of being answered at once.
  void Hold() {
    absl::MutexLock lock(&mutex_);
    hold_ = true;
  }
  int held() const {
    absl::MutexLock lock(&mutex_);
    return static_cast<int>(held_.size());
  }
  // Answers every held call in one burst, on a thread of its own (as the pool's thread does).
  void Release() {
    std::vector<std::pair<SubmitCallback, std::vector<uint8_t>>> held;
    {
      absl::MutexLock lock(&mutex_);
      held.swap(held_);
      hold_ = false;
    }
    std::thread([&held] {
      for (auto& [callback, results] : held) {
        std::move(callback)(SubmitResult{.timestamp = 77, .results = std::move(results)});
      }
    }).join();
  }
  int calls() const {
    absl::MutexLock lock(&mutex_);
    return calls_;
  }

 private:
  mutable absl::Mutex mutex_;
  int calls_ ABSL_GUARDED_BY(mutex_) = 0;
  std::vector<uint64_t> keys_ ABSL_GUARDED_BY(mutex_);
  bool hold_ ABSL_GUARDED_BY(mutex_) = false;
  std::vector<std::pair<SubmitCallback, std::vector<uint8_t>>> held_ ABSL_GUARDED_BY(mutex_);
};

class Peer {
 public:
  explicit Peer(uint16_t port) : socket_(io_) {
    socket_.connect({asio::ip::make_address("127.0.0.1"), port});
  }
  // Adopts a connected IPv4 socket.
  explicit Peer(int native_socket) : socket_(io_, asio::ip::tcp::v4(), native_socket) {}
  // Errors are ignored: a closed connection shows in Receive().
  void Send(const std::vector<uint8_t>& bytes) {
    asio::error_code ignored;
    asio::write(socket_, asio::buffer(bytes), ignored);
  }
  // The next whole message, or nullopt when the server closed the connection.
  std::optional<std::vector<uint8_t>> Receive() {
    std::vector<uint8_t> message(kHeaderSize);
    asio::error_code error;
    asio::read(socket_, asio::buffer(message), error);
    if (error) return std::nullopt;
    const uint32_t size = ParseHeader(message).frame.size;
    if (size < kHeaderSize) return std::nullopt;
    message.resize(size);
    asio::read(socket_, asio::buffer(message.data() + kHeaderSize, size - kHeaderSize), error);
    if (error) return std::nullopt;
    return message;
  }

 private:
  asio::io_context io_;
  asio::ip::tcp::socket socket_;
};

class NativeFrontendTest : public ::testing::Test {
 protected:
  void Start(NativeFrontendOptions options = {}) {
    options.host = "127.0.0.1";
    options.port = 0;
    io_thread_ = std::thread([this] { callers_io_.run(); });
    auto started = NativeFrontend::Start(callers_io_, options, &submitter_);
    ASSERT_TRUE(started.ok()) << started.status();
    frontend_ = *std::move(started);
    frontend_->SetBatchSizeLimit(kLimit);
  }
  // Registers and checks the announced limit.
  void Register(Peer& peer, TestClient& client) {
    peer.Send(client.Register());
    std::optional<std::vector<uint8_t>> reply = peer.Receive();
    ASSERT_TRUE(reply.has_value());
    const auto header = HeaderAs<ReplyHeader>(ParseHeader(*reply));
    ASSERT_EQ(header.frame.command, Command::kReply);
    RegisterResult result{};
    ASSERT_EQ(reply->size(), kHeaderSize + sizeof(result));
    std::memcpy(&result, reply->data() + kHeaderSize, sizeof(result));
    EXPECT_EQ(result.batch_size_limit, kLimit);
    client.OnReply(*reply);
  }
  void CreateAndCheck(Peer& peer, TestClient& client, int count) {
    peer.Send(client.Request(kCreateAccounts, CreateAccountsBody(count)));
    std::optional<std::vector<uint8_t>> reply = peer.Receive();
    ASSERT_TRUE(reply.has_value());
    const auto header = HeaderAs<ReplyHeader>(ParseHeader(*reply));
    ASSERT_EQ(header.frame.command, Command::kReply);
    EXPECT_TRUE(ValidateReply(header).ok());
    EXPECT_EQ(header.timestamp, 77u);
    auto batches = DecodeMultiBatch(std::span<const uint8_t>(*reply).subspan(kHeaderSize),
                                    sizeof(CreateResult));
    ASSERT_TRUE(batches.ok());
    ASSERT_EQ(batches->size(), 1u);
    EXPECT_EQ((*batches)[0].size(), count * sizeof(CreateResult));
    client.OnReply(*reply);
  }
  EvictionReason ExpectEviction(Peer& peer) {
    std::optional<std::vector<uint8_t>> message = peer.Receive();
    EXPECT_TRUE(message.has_value());
    if (!message.has_value()) return EvictionReason::kReserved;
    const auto eviction = HeaderAs<EvictionHeader>(ParseHeader(*message));
    EXPECT_EQ(eviction.frame.command, Command::kEviction);
    return eviction.reason;
  }

  // The io_context is stopped first: only then may the front end on it stop.
  void TearDown() override {
    callers_io_work_.reset();
    callers_io_.stop();
    if (io_thread_.joinable()) io_thread_.join();
    if (frontend_ != nullptr) frontend_->Stop();
  }

  asio::io_context callers_io_{1};  // Declared before frontend_, which it outlives.
  asio::executor_work_guard<asio::io_context::executor_type> callers_io_work_ =
      asio::make_work_guard(callers_io_);
  std::thread io_thread_;
  ImmediateSubmitter submitter_;
  std::unique_ptr<NativeFrontend> frontend_;
};

TEST_F(NativeFrontendTest, RegistersAnnouncesTheLimitAndAnswersRequestsThroughTheSubmitter) {
  Start();
  Peer peer(frontend_->port());
  TestClient client(42);
  Register(peer, client);
  CreateAndCheck(peer, client, 3);
  CreateAndCheck(peer, client, 1);
  EXPECT_EQ(submitter_.calls(), 2);
  EXPECT_EQ(frontend_->stats().sessions, 1u);
}

TEST_F(NativeFrontendTest, ABurstOfCompletionsAnswersEveryClient) {
  Start();
  constexpr int kClients = 40;
  std::vector<std::unique_ptr<Peer>> peers;
  std::vector<std::unique_ptr<TestClient>> clients;
  for (int i = 0; i < kClients; i++) {
    peers.push_back(std::make_unique<Peer>(frontend_->port()));
    clients.push_back(std::make_unique<TestClient>(static_cast<u128>(100 + i)));
    Register(*peers.back(), *clients.back());
  }
  submitter_.Hold();
  for (int i = 0; i < kClients; i++) {
    peers[i]->Send(clients[i]->Request(kCreateAccounts, CreateAccountsBody(1 + i % 3)));
  }
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (submitter_.held() < kClients && absl::Now() < deadline)
    absl::SleepFor(absl::Milliseconds(1));
  ASSERT_EQ(submitter_.held(), kClients);
  submitter_.Release();
  for (int i = 0; i < kClients; i++) {
    std::optional<std::vector<uint8_t>> reply = peers[i]->Receive();
    ASSERT_TRUE(reply.has_value()) << "client " << i;
    const auto header = HeaderAs<ReplyHeader>(ParseHeader(*reply));
    ASSERT_EQ(header.frame.command, Command::kReply);
    EXPECT_EQ(header.client, static_cast<u128>(100 + i));
    auto batches = DecodeMultiBatch(std::span<const uint8_t>(*reply).subspan(kHeaderSize),
                                    sizeof(CreateResult));
    ASSERT_TRUE(batches.ok());
    EXPECT_EQ((*batches)[0].size(), (1 + i % 3) * sizeof(CreateResult));
  }
  EXPECT_EQ(frontend_->stats().replies, uint64_t{2 * kClients});
}

TEST_F(NativeFrontendTest, CountsRequestsBatchesRepliesDuplicatesAndEvictionsByReason) {
  Start();
  Peer peer(frontend_->port());
  TestClient client(42);
  Register(peer, client);
  const std::vector<uint8_t> request = client.Request(kCreateAccounts, CreateAccountsBody(3));
  peer.Send(request);
  std::optional<std::vector<uint8_t>> reply = peer.Receive();
  ASSERT_TRUE(reply.has_value());
  client.OnReply(*reply);
  peer.Send(request);  // A retry of a committed request: the stored reply, not a new batch.
  std::optional<std::vector<uint8_t>> duplicate = peer.Receive();
  ASSERT_TRUE(duplicate.has_value());
  EXPECT_EQ(*duplicate, *reply);
  Peer other_peer(frontend_->port());
  TestClient other(43);
  Register(other_peer, other);
  other_peer.Send(other.Request(kCreateAccounts, CreateAccountsBody(kLimit / sizeof(Account) + 1)));
  EXPECT_EQ(ExpectEviction(other_peer), EvictionReason::kInvalidRequestBodySize);

  const NativeFrontendStats stats = frontend_->stats();
  EXPECT_EQ(stats.connections_open, 2u);
  EXPECT_EQ(stats.requests, 5u);  // Two registers, the create, its retry, the oversized one.
  EXPECT_EQ(stats.batches, 1u);
  EXPECT_EQ(stats.replies, 4u);
  EXPECT_EQ(stats.duplicates, 1u);
  EXPECT_EQ(stats.evictions, 1u);
  const auto body_size = static_cast<size_t>(EvictionReason::kInvalidRequestBodySize);
  for (size_t reason = 0; reason < stats.evictions_by_reason.size(); reason++) {
    EXPECT_EQ(stats.evictions_by_reason[reason], reason == body_size ? 1u : 0u) << reason;
  }
  EXPECT_EQ(stats.sessions, 2u);  // An eviction message leaves the table as it was.
}

TEST_F(NativeFrontendTest, TooLargeForTheAnnouncedLimitIsEvictedAsInvalidBodySize) {
  Start();
  Peer peer(frontend_->port());
  TestClient client(42);
  Register(peer, client);
  peer.Send(client.Request(kCreateAccounts, CreateAccountsBody(kLimit / sizeof(Account) + 1)));
  EXPECT_EQ(ExpectEviction(peer), EvictionReason::kInvalidRequestBodySize);
  EXPECT_EQ(submitter_.calls(), 0);
}

TEST_F(NativeFrontendTest, LeastRecentlyCommittedVirtualSessionIsEvictedWithNoSession) {
  Start({.sessions_max = 2});
  Peer first_peer(frontend_->port());
  TestClient first(1);
  Register(first_peer, first);
  Peer second_peer(frontend_->port());
  TestClient second(2);
  Register(second_peer, second);
  CreateAndCheck(second_peer, second, 1);
  Peer third_peer(frontend_->port());
  TestClient third(3);
  Register(third_peer, third);  // Evicts `first`, the least recently committed.
  first_peer.Send(first.Request(kCreateAccounts, CreateAccountsBody(1)));
  EXPECT_EQ(ExpectEviction(first_peer), EvictionReason::kNoSession);
  CreateAndCheck(second_peer, second, 1);
  CreateAndCheck(third_peer, third, 1);
}

TEST_F(NativeFrontendTest, HostileInputClosesOrEvictsAndOthersAreUnaffected) {
  Start({.cluster = 9});
  Peer good_peer(frontend_->port());
  TestClient good(100, kReleaseServer, /*cluster=*/9);
  Register(good_peer, good);

  {  // Garbage: bad header checksum.
    Peer peer(frontend_->port());
    peer.Send(std::vector<uint8_t>(kHeaderSize, 0x5A));
    EXPECT_FALSE(peer.Receive().has_value());
  }
  {  // A valid message for another cluster.
    Peer peer(frontend_->port());
    TestClient stranger(101, kReleaseServer, /*cluster=*/1);
    peer.Send(stranger.Register());
    EXPECT_FALSE(peer.Receive().has_value());
  }
  {  // A bad body checksum.
    Peer peer(frontend_->port());
    TestClient client(102, kReleaseServer, 9);
    std::vector<uint8_t> bytes = client.Register();
    bytes.back() ^= 1;
    peer.Send(bytes);
    EXPECT_FALSE(peer.Receive().has_value());
  }
  {  // A size beyond any message.
    Peer peer(frontend_->port());
    TestClient client(103, kReleaseServer, 9);
    std::vector<uint8_t> bytes = client.Register();
    Header header = ParseHeader(bytes);
    header.frame.size = 0x7FFFFFFF;
    SetHeaderChecksum(header);
    std::memcpy(bytes.data(), &header, kHeaderSize);
    peer.Send(std::vector<uint8_t>(bytes.begin(), bytes.begin() + kHeaderSize));
    EXPECT_FALSE(peer.Receive().has_value());
  }
  {  // Releases outside the served range.
    Peer peer(frontend_->port());
    TestClient old_client(104, MakeRelease(0, 15, 0), 9);
    peer.Send(old_client.Register());
    EXPECT_EQ(ExpectEviction(peer), EvictionReason::kClientReleaseTooLow);
    Peer other(frontend_->port());
    TestClient new_client(105, MakeRelease(0, 99, 0), 9);
    other.Send(new_client.Register());
    EXPECT_EQ(ExpectEviction(other), EvictionReason::kClientReleaseTooHigh);
  }
  CreateAndCheck(good_peer, good, 2);
  EXPECT_GE(frontend_->stats().closes, 4u);
}

TEST_F(NativeFrontendTest, ConnectionsBeyondTheBoundAreClosed) {
  Start({.connections_max = 1});
  Peer first(frontend_->port());
  TestClient client(1);
  Register(first, client);  // The first connection is served...
  Peer second(frontend_->port());
  TestClient other(2);
  second.Send(other.Register());
  EXPECT_FALSE(second.Receive().has_value());  // ...the second is closed at accept.
  CreateAndCheck(first, client, 1);
}

TEST_F(NativeFrontendTest, ClosesAClientThatDoesNotReadItsReplies) {
  Start({.write_queue_bytes_max = 64 * 1024});
  Peer peer(frontend_->port());
  TestClient client(5);
  std::vector<uint8_t> pings;
  for (uint64_t i = 1; i <= 1'000; i++) {
    const std::vector<uint8_t> ping = client.Ping(i);
    pings.insert(pings.end(), ping.begin(), ping.end());
  }
  // Pongs pile up in the kernel's buffers, then in the front end's write queue.
  for (int round = 0; round < 400 && frontend_->stats().slow_readers_closed == 0; round++) {
    peer.Send(pings);
  }
  // The close is counted when it is decided; the connection is gone once its socket is closed,
  // a moment later on the front end's thread: wait for both.
  for (int i = 0; i < 10'000 && (frontend_->stats().slow_readers_closed == 0 ||
                                  frontend_->stats().connections_open != 0);
       i++) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_EQ(frontend_->stats().slow_readers_closed, 1u);
  EXPECT_EQ(frontend_->stats().connections_open, 0u);
}

TEST_F(NativeFrontendTest, AtTheTotalBoundTheConnectionHoldingTheMostUnreadRepliesIsClosed) {
  // Each connection alone may queue far more than all of them together.
  Start({.write_queue_bytes_max = 64ull << 20, .write_queue_bytes_total_max = 1 << 20});
  Peer reader(frontend_->port());
  TestClient reading_client(6);
  Register(reader, reading_client);
  Peer stalled(frontend_->port());  // Never reads.
  TestClient stalled_client(7);
  std::vector<uint8_t> pings;
  for (uint64_t i = 1; i <= 1'000; i++) {
    const std::vector<uint8_t> ping = stalled_client.Ping(i);
    pings.insert(pings.end(), ping.begin(), ping.end());
  }
  // Pongs pile up in the kernel's buffers, then in the front end's write queue, until every
  // connection's queued replies together would pass 1 MiB.
  for (int round = 0; round < 400 && frontend_->stats().slow_readers_closed == 0; round++) {
    stalled.Send(pings);
    EXPECT_LE(frontend_->stats().reply_bytes_queued, uint64_t{1} << 20);
  }
  for (int i = 0; i < 10'000 && (frontend_->stats().slow_readers_closed == 0 ||
                                  frontend_->stats().connections_open != 1);
       i++) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_EQ(frontend_->stats().slow_readers_closed, 1u);
  EXPECT_EQ(frontend_->stats().connections_open, 1u);
  EXPECT_EQ(frontend_->stats().reply_bytes_queued, 0u);
  CreateAndCheck(reader, reading_client, 2);  // The client that reads is served as before.
}

TEST_F(NativeFrontendTest, AcceptFailureBacksOffAndRetriesInsteadOfSpinning) {
  if (!replica::testing::kDescriptorExhaustionSupported) {
    GTEST_SKIP() << "a sanitizer's runtime needs descriptors of its own";
  }
  Start();
  replica::testing::DescriptorExhaustion exhaustion;
  exhaustion.FreeOne();
  const int fd = replica::testing::ConnectLoopback(frontend_->port());
  ASSERT_GE(fd, 0);
  for (int i = 0; i < 10'000 && frontend_->stats().accept_errors == 0; i++) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_GE(frontend_->stats().accept_errors, 1u);
  // A spinning loop fails thousands of times in this window; backing off 100 ms, a few times.
  const auto window_start = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const auto window = std::chrono::steady_clock::now() - window_start;
  EXPECT_LE(frontend_->stats().accept_errors,
            2 + static_cast<uint64_t>(window / std::chrono::milliseconds(100)));
  exhaustion.Release();
  Peer peer(fd);  // Accepted once descriptors are back, and served.
  TestClient client(7);
  Register(peer, client);
  EXPECT_EQ(frontend_->stats().connections_open, 1u);
}

TEST_F(NativeFrontendTest, StopClosesEveryConnection) {
  Start();
  Peer peer(frontend_->port());
  TestClient client(42);
  Register(peer, client);
  TearDown();  // Stops the io_context first, as tbproxy stops the pool's.
  EXPECT_FALSE(peer.Receive().has_value());  // The connection was closed, not left open.
}

TEST(NativeFrontendOptions, RejectsBadSettings) {
  ImmediateSubmitter submitter;
  asio::io_context io;
  EXPECT_FALSE(NativeFrontend::Start(io, {.sessions_max = 0}, &submitter).ok());
  EXPECT_FALSE(NativeFrontend::Start(io, {.host = "not an address"}, &submitter).ok());
  EXPECT_FALSE(NativeFrontend::Start(io, {.connections_max = 0}, &submitter).ok());
  EXPECT_FALSE(
      NativeFrontend::Start(io, {.request_timeout = absl::ZeroDuration()}, &submitter).ok());
}

}  // namespace
}  // namespace tb::proxy
