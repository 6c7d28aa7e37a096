#include "proxy/grpc/handed_off_sockets.h"

#include <sys/socket.h>
#include <unistd.h>

#include "gtest/gtest.h"

namespace tb::proxy {
namespace {

int NewSocket() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  EXPECT_GE(fd, 0);
  return fd;
}

TEST(HandedOffSockets, CountsASocketUntilItIsClosed) {
  HandedOffSockets sockets;
  const int first = NewSocket();
  const int second = NewSocket();
  ASSERT_TRUE(sockets.Add(first).ok());
  ASSERT_TRUE(sockets.Add(second).ok());
  sockets.Sweep();
  EXPECT_EQ(sockets.size(), 2u);
  ::close(first);
  EXPECT_EQ(sockets.size(), 2u) << "nothing is dropped between sweeps";
  sockets.Sweep();
  EXPECT_EQ(sockets.size(), 1u);
  ::close(second);
  sockets.Sweep();
  EXPECT_EQ(sockets.size(), 0u);
}

TEST(HandedOffSockets, ANumberReusedForAnotherSocketIsNotTheOneHandedOff) {
  HandedOffSockets sockets;
  const int handed_off = NewSocket();
  ASSERT_TRUE(sockets.Add(handed_off).ok());
  ::close(handed_off);
  const int other = NewSocket();  // The kernel gives out the lowest free number.
  ASSERT_EQ(other, handed_off) << "the test needs the number reused";
  sockets.Sweep();
  EXPECT_EQ(sockets.size(), 0u);
  ::close(other);
}

TEST(HandedOffSockets, AddingAReusedNumberReplacesTheStaleEntry) {
  HandedOffSockets sockets;
  const int first = NewSocket();
  ASSERT_TRUE(sockets.Add(first).ok());
  ::close(first);
  const int second = NewSocket();
  ASSERT_EQ(second, first) << "the test needs the number reused";
  ASSERT_TRUE(sockets.Add(second).ok());
  sockets.Sweep();
  EXPECT_EQ(sockets.size(), 1u);
  ::close(second);
}

TEST(HandedOffSockets, SomethingThatIsNotASocketIsRefused) {
  HandedOffSockets sockets;
  int pipe_ends[2];
  ASSERT_EQ(::pipe(pipe_ends), 0);
  const absl::Status added = sockets.Add(pipe_ends[0]);
  EXPECT_EQ(added.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(sockets.size(), 0u);
  ::close(pipe_ends[0]);
  ::close(pipe_ends[1]);
}

}  // namespace
}  // namespace tb::proxy
