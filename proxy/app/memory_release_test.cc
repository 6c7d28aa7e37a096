#include "proxy/app/memory_release.h"

#include <atomic>

#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace tb::proxy {
namespace {

TEST(MemoryReleaser, ReleasesEveryIntervalUntilDestroyed) {
  std::atomic<int> releases{0};
  {
    MemoryReleaser releaser(absl::Milliseconds(5), [&] { releases.fetch_add(1); });
    const absl::Time give_up = absl::Now() + absl::Seconds(10);
    while (releases.load() < 3 && absl::Now() < give_up) absl::SleepFor(absl::Milliseconds(1));
    EXPECT_GE(releases.load(), 3);
  }
  const int at_destruction = releases.load();
  absl::SleepFor(absl::Milliseconds(30));
  EXPECT_EQ(releases.load(), at_destruction);
}

TEST(MemoryReleaser, DestroyedBeforeTheFirstIntervalReleasesNothing) {
  std::atomic<int> releases{0};
  const absl::Time start = absl::Now();
  { MemoryReleaser releaser(absl::Hours(1), [&] { releases.fetch_add(1); }); }
  EXPECT_EQ(releases.load(), 0);
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));  // Destruction does not wait the interval.
}

TEST(MemoryReleaser, ReleasingWithoutTcmallocIsHarmless) {
  ReleaseFreeMallocMemory();  // This test binary does not link tcmalloc: a no-op.
}

}  // namespace
}  // namespace tb::proxy
