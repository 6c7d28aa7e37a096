#include "proxy/app/io_loop.h"

#include <atomic>
#include <chrono>
#include <thread>

#include "absl/synchronization/notification.h"
#include "asio.hpp"
#include "gtest/gtest.h"

namespace tb::proxy {
namespace {

class IoLoopTest : public ::testing::TestWithParam<absl::Duration> {};

TEST_P(IoLoopTest, RunsHandlersPostedFromOtherThreadsUntilStopped) {
  asio::io_context io(1);
  auto work = asio::make_work_guard(io);
  std::thread loop([&] { RunIoContext(io, GetParam()); });
  constexpr int kHandlers = 2000;
  std::atomic<int> ran{0};
  absl::Notification all_ran;
  for (int i = 0; i < kHandlers; i++) {
    asio::post(io, [&] {
      if (++ran == kHandlers) all_ran.Notify();
    });
    // Some posts find the loop polling, some find it asleep.
    if (i % 100 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  all_ran.WaitForNotification();
  io.stop();
  loop.join();
  EXPECT_EQ(ran.load(), kHandlers);
}

TEST_P(IoLoopTest, TimersFireWhilePolling) {
  asio::io_context io(1);
  asio::steady_timer timer(io, std::chrono::milliseconds(5));
  bool fired = false;
  timer.async_wait([&](const asio::error_code& error) { fired = !error; });
  RunIoContext(io, GetParam());  // Returns once the timer's handler ran: no work left.
  EXPECT_TRUE(fired);
}

TEST_P(IoLoopTest, ReturnsWhenOutOfWork) {
  asio::io_context io(1);
  int ran = 0;
  for (int i = 0; i < 3; i++) asio::post(io, [&] { ran++; });
  RunIoContext(io, GetParam());
  EXPECT_EQ(ran, 3);
  EXPECT_TRUE(io.stopped());
}

INSTANTIATE_TEST_SUITE_P(BusyPoll, IoLoopTest,
                         ::testing::Values(absl::ZeroDuration(), absl::Microseconds(100),
                                           absl::Milliseconds(1)));

}  // namespace
}  // namespace tb::proxy
