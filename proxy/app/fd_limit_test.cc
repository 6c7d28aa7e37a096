#include "proxy/app/fd_limit.h"

#include <sys/resource.h>

#include "gtest/gtest.h"

namespace tb::proxy {
namespace {

TEST(FileDescriptorLimit, TheNeedCountsEveryConnectionBoundAndTbproxysOwn) {
  Config config;
  config.grpc_connections_max = 100;
  config.native_connections_max = 20;
  config.session_budget = 8;
  config.cluster_addresses = {{.host = "127.0.0.1", .port = 3000}};
  EXPECT_EQ(FileDescriptorsNeeded(config), 100u + 8u + kFileDescriptorsOwn)
      << "without --native-listen the native bound holds nothing";
  config.native_listen = HostPort{"127.0.0.1", 0};
  EXPECT_EQ(FileDescriptorsNeeded(config), 100u + 20u + 8u + kFileDescriptorsOwn);
  config.cluster_addresses.clear();  // The embedded dev cluster holds the sessions' other ends.
  EXPECT_EQ(FileDescriptorsNeeded(config), 100u + 20u + 16u + kFileDescriptorsOwn);
}

TEST(FileDescriptorLimit, TheSoftLimitIsRaisedToTheHardOne) {
  rlimit lowered{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &lowered), 0);
  if (lowered.rlim_max < 2) GTEST_SKIP() << "hard limit " << lowered.rlim_max;
  lowered.rlim_cur = lowered.rlim_max / 2;
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &lowered), 0);

  absl::StatusOr<FileDescriptorLimit> limit = RaiseFileDescriptorLimit();
  ASSERT_TRUE(limit.ok()) << limit.status();
  EXPECT_EQ(limit->soft_before, lowered.rlim_max / 2);
  EXPECT_EQ(limit->soft, lowered.rlim_max);
  EXPECT_EQ(limit->hard, lowered.rlim_max);
  rlimit now{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &now), 0);
  EXPECT_EQ(now.rlim_cur, lowered.rlim_max);

  absl::StatusOr<FileDescriptorLimit> again = RaiseFileDescriptorLimit();
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->soft_before, again->soft);
}

}  // namespace
}  // namespace tb::proxy
