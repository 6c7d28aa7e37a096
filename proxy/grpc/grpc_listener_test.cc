#include "proxy/grpc/grpc_listener.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tb::proxy {
namespace {

using ::testing::HasSubstr;

constexpr absl::Duration kGiveUp = absl::Seconds(10);

// Stands in for gRPC: keeps the sockets handed to it, and closes one when a test says so.
class Taker {
 public:
  GrpcListener::Handoff Handoff() {
    return [this](int fd, int listener_fd) {
      EXPECT_GE(listener_fd, 0);
      absl::MutexLock lock(&mutex_);
      fds_.push_back(fd);
    };
  }
  // The sockets handed off so far, once there are at least `count` (or after kGiveUp).
  std::vector<int> AwaitCount(size_t count) {
    absl::MutexLock lock(&mutex_);
    auto enough = [this, count]() ABSL_SHARED_LOCKS_REQUIRED(mutex_) {
      return fds_.size() >= count;
    };
    mutex_.AwaitWithTimeout(absl::Condition(&enough), kGiveUp);
    return fds_;
  }
  size_t count() {
    absl::MutexLock lock(&mutex_);
    return fds_.size();
  }
  ~Taker() {
    for (int fd : fds_) ::close(fd);  // A second close of a test-closed number fails harmlessly.
  }

 private:
  absl::Mutex mutex_;
  std::vector<int> fds_ ABSL_GUARDED_BY(mutex_);
};

// A blocking client socket connected to 127.0.0.1:port (::1 with `ipv6`), or -1 (errno says
// why).
int Connect(uint16_t port, bool ipv6 = false) {
  const int fd = ::socket(ipv6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sockaddr_in6 address6{};
  address6.sin6_family = AF_INET6;
  address6.sin6_port = htons(port);
  address6.sin6_addr = in6addr_loopback;
  const int connected =
      ipv6 ? ::connect(fd, reinterpret_cast<sockaddr*>(&address6), sizeof(address6))
           : ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address));
  if (connected != 0) {
    const int error = errno;
    ::close(fd);
    errno = error;
    return -1;
  }
  return fd;
}

// True when the server end closed `fd` (end of stream or reset) within kGiveUp.
bool ClosedByServer(int fd) {
  pollfd readable{.fd = fd, .events = POLLIN};
  if (::poll(&readable, 1, static_cast<int>(absl::ToInt64Milliseconds(kGiveUp))) != 1) {
    return false;
  }
  char byte;
  const ssize_t got = ::recv(fd, &byte, 1, 0);
  return got == 0 || (got < 0 && errno == ECONNRESET);
}

// Waits until `done` holds or kGiveUp passes; returns whether it held.
template <typename Done>
bool Eventually(Done done) {
  const absl::Time give_up = absl::Now() + kGiveUp;
  while (!done()) {
    if (absl::Now() > give_up) return false;
    absl::SleepFor(absl::Milliseconds(2));
  }
  return true;
}

std::unique_ptr<GrpcListener> ListenOrDie(GrpcListenerOptions options) {
  absl::StatusOr<std::unique_ptr<GrpcListener>> listener = GrpcListener::Listen(options);
  EXPECT_TRUE(listener.ok()) << listener.status();
  return listener.ok() ? *std::move(listener) : nullptr;
}

TEST(GrpcListener, HandsOffANonBlockingNoDelaySocketWithItsUserTimeoutCarryingTheClientsBytes) {
  Taker taker;
  auto listener = ListenOrDie({.tcp_user_timeout = absl::Seconds(20)});
  ASSERT_NE(listener, nullptr);
  ASSERT_NE(listener->port(), 0);
  listener->Start(taker.Handoff());
  const int client = Connect(listener->port());
  ASSERT_GE(client, 0);
  ASSERT_EQ(::send(client, "x", 1, 0), 1);

  std::vector<int> taken = taker.AwaitCount(1);
  ASSERT_EQ(taken.size(), 1u);
  EXPECT_NE(::fcntl(taken[0], F_GETFL) & O_NONBLOCK, 0);
  int no_delay = 0;
  socklen_t size = sizeof(no_delay);
  ASSERT_EQ(::getsockopt(taken[0], IPPROTO_TCP, TCP_NODELAY, &no_delay, &size), 0);
  EXPECT_EQ(no_delay, 1);
  int user_timeout_ms = 0;
  size = sizeof(user_timeout_ms);
  ASSERT_EQ(::getsockopt(taken[0], IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout_ms, &size), 0);
  EXPECT_EQ(user_timeout_ms, 20'000);
  pollfd readable{.fd = taken[0], .events = POLLIN};
  ASSERT_EQ(::poll(&readable, 1, 10'000), 1);
  char byte = 0;
  EXPECT_EQ(::recv(taken[0], &byte, 1, 0), 1);
  EXPECT_EQ(byte, 'x');
  EXPECT_EQ(listener->stats().open, 1u);
  ::close(client);
}

TEST(GrpcListener, ClosesAConnectionBeyondTheBoundAtAccept) {
  Taker taker;
  auto listener = ListenOrDie({.connections_max = 2, .recount_interval = absl::Hours(1)});
  ASSERT_NE(listener, nullptr);
  listener->Start(taker.Handoff());
  const int first = Connect(listener->port());
  const int second = Connect(listener->port());
  ASSERT_EQ(taker.AwaitCount(2).size(), 2u);

  const int third = Connect(listener->port());
  ASSERT_GE(third, 0);  // The kernel completes the handshake; the listener then closes it.
  EXPECT_TRUE(ClosedByServer(third));
  EXPECT_EQ(taker.count(), 2u);
  const GrpcListenerStats stats = listener->stats();
  EXPECT_EQ(stats.open, 2u);
  EXPECT_EQ(stats.refused, 1u);
  EXPECT_EQ(stats.accept_errors, 0u);
  for (int fd : {first, second, third}) ::close(fd);
}

TEST(GrpcListener, APlaceFreedByTheTakerIsSeenByTheNextConnection) {
  Taker taker;
  auto listener = ListenOrDie({.connections_max = 1,
                               .recount_interval = absl::Hours(1),
                               .refusal_recount_interval_min = absl::ZeroDuration()});
  ASSERT_NE(listener, nullptr);
  listener->Start(taker.Handoff());
  const int first = Connect(listener->port());
  std::vector<int> taken = taker.AwaitCount(1);
  ASSERT_EQ(taken.size(), 1u);
  ::close(taken[0]);  // As gRPC closes a connection, without telling the listener.

  const int second = Connect(listener->port());
  ASSERT_EQ(taker.AwaitCount(2).size(), 2u);
  EXPECT_EQ(listener->stats().refused, 0u);
  EXPECT_EQ(listener->stats().open, 1u);
  ::close(first);
  ::close(second);
}

TEST(GrpcListener, ARecountBetweenConnectionsKeepsTheOpenCountCurrent) {
  Taker taker;
  auto listener = ListenOrDie({.recount_interval = absl::Milliseconds(10)});
  ASSERT_NE(listener, nullptr);
  listener->Start(taker.Handoff());
  const int first = Connect(listener->port());
  const int second = Connect(listener->port());
  std::vector<int> taken = taker.AwaitCount(2);
  ASSERT_EQ(taken.size(), 2u);
  EXPECT_TRUE(Eventually([&] { return listener->stats().open == 2; }));
  ::close(taken[0]);
  EXPECT_TRUE(Eventually([&] { return listener->stats().open == 1; }));
  ::close(taken[1]);
  EXPECT_TRUE(Eventually([&] { return listener->stats().open == 0; }));
  ::close(first);
  ::close(second);
}

TEST(GrpcListener, AfterStopNothingIsAcceptedOrHandedOff) {
  Taker taker;
  auto listener = ListenOrDie({});
  ASSERT_NE(listener, nullptr);
  listener->Start(taker.Handoff());
  const uint16_t port = listener->port();
  listener->Stop();
  listener->Stop();  // Idempotent.
  EXPECT_EQ(Connect(port), -1);
  EXPECT_EQ(errno, ECONNREFUSED);
  EXPECT_EQ(taker.count(), 0u);
}

TEST(GrpcListener, AListenerNeverStartedStopsAndFreesItsPort) {
  uint16_t port = 0;
  {
    auto listener = ListenOrDie({});
    ASSERT_NE(listener, nullptr);
    port = listener->port();
  }
  EXPECT_EQ(Connect(port), -1);
  EXPECT_EQ(errno, ECONNREFUSED);
}

TEST(GrpcListener, APortInUseIsAnErrorNamingTheAddress) {
  auto first = ListenOrDie({});
  ASSERT_NE(first, nullptr);
  absl::StatusOr<std::unique_ptr<GrpcListener>> second =
      GrpcListener::Listen({.port = first->port()});
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(second.status().message(), HasSubstr(absl::StrCat("127.0.0.1:", first->port())));
}

TEST(GrpcListener, ANameListensOnItsAddresses) {
  Taker taker;
  auto listener = ListenOrDie({.host = "localhost"});
  ASSERT_NE(listener, nullptr);
  listener->Start(taker.Handoff());
  const int client = Connect(listener->port());  // 127.0.0.1, whichever address came first.
  ASSERT_GE(client, 0);
  EXPECT_EQ(taker.AwaitCount(1).size(), 1u);
  ::close(client);
}

// True when this machine has an IPv6 loopback to test with.
bool HasIpv6Loopback() {
  const int fd = ::socket(AF_INET6, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in6 address{};
  address.sin6_family = AF_INET6;
  address.sin6_addr = in6addr_loopback;
  const bool bound = ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
  ::close(fd);
  return bound;
}

TEST(GrpcListener, AWildcardAddressServesBothFamilies) {
  if (!HasIpv6Loopback()) GTEST_SKIP() << "no IPv6 loopback here";
  for (const char* wildcard : {"0.0.0.0", "::"}) {
    Taker taker;
    auto listener = ListenOrDie({.host = wildcard});
    ASSERT_NE(listener, nullptr);
    listener->Start(taker.Handoff());
    const int over_ipv4 = Connect(listener->port());
    const int over_ipv6 = Connect(listener->port(), /*ipv6=*/true);
    EXPECT_GE(over_ipv4, 0) << wildcard;
    EXPECT_GE(over_ipv6, 0) << wildcard;
    EXPECT_EQ(taker.AwaitCount(2).size(), 2u) << wildcard;
    ::close(over_ipv4);
    ::close(over_ipv6);
  }
}

}  // namespace
}  // namespace tb::proxy
