#include "proxy/app/io_loop.h"

#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <ostream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "asio.hpp"
#include "gtest/gtest.h"

namespace tb::proxy {
namespace {

// busy_poll, and what poll_hint answers (zero: no hint).
struct Polling {
  absl::Duration busy_poll;
  absl::Duration hint;
};

void PrintTo(const Polling& polling, std::ostream* os) {
  *os << "busy_poll " << polling.busy_poll << ", hint " << polling.hint;
}

IoLoopPolling MakePolling(const Polling& polling) {
  IoLoopPolling result{.busy_poll = polling.busy_poll};
  if (polling.hint > absl::ZeroDuration()) {
    result.poll_hint = [hint = polling.hint] { return hint; };
  }
  return result;
}

class IoLoopTest : public ::testing::TestWithParam<Polling> {};

TEST_P(IoLoopTest, RunsHandlersPostedFromOtherThreadsUntilStopped) {
  asio::io_context io(1);
  auto work = asio::make_work_guard(io);
  std::thread loop([&] { RunIoContext(io, MakePolling(GetParam())); });
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
  RunIoContext(io, MakePolling(GetParam()));  // Returns once the timer's handler ran: no work left.
  EXPECT_TRUE(fired);
}

TEST_P(IoLoopTest, ReturnsWhenOutOfWork) {
  asio::io_context io(1);
  int ran = 0;
  for (int i = 0; i < 3; i++) asio::post(io, [&] { ran++; });
  RunIoContext(io, MakePolling(GetParam()));
  EXPECT_EQ(ran, 3);
  EXPECT_TRUE(io.stopped());
}

INSTANTIATE_TEST_SUITE_P(
    Polling, IoLoopTest,
    ::testing::Values(Polling{absl::ZeroDuration(), absl::ZeroDuration()},
                      Polling{absl::Microseconds(100), absl::ZeroDuration()},
                      Polling{absl::Milliseconds(1), absl::ZeroDuration()},
                      Polling{absl::ZeroDuration(), absl::Microseconds(100)},
                      Polling{absl::Microseconds(100), absl::Milliseconds(1)}),
    [](const ::testing::TestParamInfo<Polling>& info) {
      return absl::StrCat("BusyPoll", absl::ToInt64Microseconds(info.param.busy_poll), "usHint",
                          absl::ToInt64Microseconds(info.param.hint), "us");
    });

// Voluntary context switches of the calling thread: each is a sleep (here, in epoll_wait).
long VoluntarySwitches() {
  rusage usage{};
  getrusage(RUSAGE_THREAD, &usage);
  return usage.ru_nvcsw;
}

// Runs `io` on this thread until a 20 ms timer fires; returns the voluntary switches meanwhile.
long SwitchesWaitingForATimer(absl::AnyInvocable<absl::Duration()> hint) {
  asio::io_context io(1);
  asio::steady_timer timer(io, std::chrono::milliseconds(20));
  bool fired = false;
  timer.async_wait([&](const asio::error_code& error) { fired = !error; });
  const long before = VoluntarySwitches();
  RunIoContext(io, {.poll_hint = std::move(hint)});
  const long switches = VoluntarySwitches() - before;
  EXPECT_TRUE(fired);
  return switches;
}

TEST(IoLoopPollHintTest, PollsInsteadOfSleepingWhileTheHintAsks) {
  EXPECT_EQ(SwitchesWaitingForATimer([] { return absl::Seconds(1); }), 0);
}

TEST(IoLoopPollHintTest, SleepsWhenTheHintIsZero) {
  int asked = 0;
  EXPECT_GE(SwitchesWaitingForATimer([&asked] {
              asked++;
              return absl::ZeroDuration();
            }),
            1);
  EXPECT_GE(asked, 1);
}

}  // namespace
}  // namespace tb::proxy
