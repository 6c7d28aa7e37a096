#include "bench/loadgen/proc_stat.h"

#include <unistd.h>

#include "gtest/gtest.h"

namespace tb::bench {
namespace {

TEST(ProcStatTest, CpuSecondsFromUtimeAndStime) {
  const std::string stat =
      "4242 (tb proxy (x)) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 150 0 0 20 0 9 0 100 "
      "1000000 500 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0";
  absl::StatusOr<double> cpu = ParseCpuSeconds(stat, 100);
  ASSERT_TRUE(cpu.ok()) << cpu.status();
  EXPECT_DOUBLE_EQ(*cpu, 4.0);
}

TEST(ProcStatTest, MalformedStatIsAnError) {
  EXPECT_FALSE(ParseCpuSeconds("", 100).ok());
  EXPECT_FALSE(ParseCpuSeconds("1 (x) S 1 2", 100).ok());
  EXPECT_FALSE(ParseCpuSeconds("1 (x) S 1 2 3 4 5 6 7 8 9 x y z", 100).ok());
  EXPECT_FALSE(ParseCpuSeconds("1 (x) S 1 2 3 4 5 6 7 8 9 10 11 12 13", 0).ok());
}

TEST(ProcStatTest, RssFromStatus) {
  absl::StatusOr<uint64_t> rss = ParseRssKb("Name:\ttbproxy\nVmPeak:\t 9 kB\nVmRSS:\t   12345 kB\n");
  ASSERT_TRUE(rss.ok()) << rss.status();
  EXPECT_EQ(*rss, 12345u);
  EXPECT_FALSE(ParseRssKb("Name:\tx\n").ok());
  EXPECT_FALSE(ParseRssKb("VmRSS:\tlots kB\n").ok());
}

TEST(ProcStatTest, SamplesThisProcess) {
  absl::StatusOr<ProcessSample> sample = SampleProcess(getpid());
  ASSERT_TRUE(sample.ok()) << sample.status();
  EXPECT_GT(sample->rss_kb, 0u);
  EXPECT_FALSE(SampleProcess(-1).ok());
}

}  // namespace
}  // namespace tb::bench
