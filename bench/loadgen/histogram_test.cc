#include "bench/loadgen/histogram.h"

#include <cstdint>
#include <random>

#include "gtest/gtest.h"

namespace tb::bench {
namespace {

TEST(HistogramTest, SmallValuesAreExact) {
  for (uint64_t v = 0; v < 2 * Histogram::kSubBuckets; v++) {
    EXPECT_EQ(Histogram::BucketIndex(v), v);
    EXPECT_EQ(Histogram::BucketLowest(Histogram::BucketIndex(v)), v);
    EXPECT_EQ(Histogram::BucketHighest(Histogram::BucketIndex(v)), v);
  }
}

TEST(HistogramTest, BucketsTileTheWholeRangeWithoutGaps) {
  for (uint32_t i = 0; i + 1 < Histogram::kBucketCount; i++) {
    ASSERT_EQ(Histogram::BucketHighest(i) + 1, Histogram::BucketLowest(i + 1)) << i;
  }
  EXPECT_EQ(Histogram::BucketHighest(Histogram::kBucketCount - 1), UINT64_MAX);
  EXPECT_EQ(Histogram::BucketIndex(UINT64_MAX), Histogram::kBucketCount - 1);
}

TEST(HistogramTest, EveryValueFallsInsideItsBucketWithinRelativePrecision) {
  std::mt19937_64 random(7);
  for (int i = 0; i < 100000; i++) {
    const uint64_t value = random() >> (random() % 64);
    const uint32_t index = Histogram::BucketIndex(value);
    ASSERT_LE(Histogram::BucketLowest(index), value);
    ASSERT_GE(Histogram::BucketHighest(index), value);
    const uint64_t width = Histogram::BucketHighest(index) - Histogram::BucketLowest(index);
    ASSERT_LE(static_cast<double>(width), static_cast<double>(value) / Histogram::kSubBuckets);
  }
}

TEST(HistogramTest, PercentilesOfAUniformSequence) {
  Histogram histogram;
  for (uint64_t v = 1; v <= 100000; v++) histogram.Record(v * 1000);  // 1 µs .. 100 ms in ns.
  EXPECT_EQ(histogram.count(), 100000u);
  EXPECT_EQ(histogram.min(), 1000u);
  EXPECT_EQ(histogram.max(), 100000000u);
  EXPECT_EQ(histogram.ValueAtPercentile(100), 100000000u);
  const struct {
    double percentile;
    double expected;
  } cases[] = {{50, 50e6}, {99, 99e6}, {99.9, 99.9e6}, {1, 1e6}};
  for (const auto& c : cases) {
    const double got = static_cast<double>(histogram.ValueAtPercentile(c.percentile));
    EXPECT_GE(got, c.expected) << c.percentile;
    EXPECT_LE(got, c.expected * (1.0 + 1.0 / Histogram::kSubBuckets)) << c.percentile;
  }
  EXPECT_NEAR(histogram.mean(), 50000.5 * 1000, 1.0);
}

TEST(HistogramTest, MergeEqualsRecordingEverythingInOne) {
  Histogram a, b, all;
  for (uint64_t v = 0; v < 5000; v++) {
    (v % 3 == 0 ? a : b).Record(v * 977);
    all.Record(v * 977);
  }
  a.Merge(b);
  EXPECT_EQ(a.count(), all.count());
  EXPECT_EQ(a.min(), all.min());
  EXPECT_EQ(a.max(), all.max());
  for (double p : {0.1, 10.0, 50.0, 90.0, 99.0, 99.9, 100.0}) {
    EXPECT_EQ(a.ValueAtPercentile(p), all.ValueAtPercentile(p)) << p;
  }
}

TEST(HistogramTest, EmptyAndSingleValue) {
  Histogram histogram;
  EXPECT_EQ(histogram.ValueAtPercentile(50), 0u);
  EXPECT_EQ(histogram.min(), 0u);
  histogram.Record(123456789);
  EXPECT_EQ(histogram.ValueAtPercentile(0.001), 123456789u);  // Capped at max.
  EXPECT_EQ(histogram.ValueAtPercentile(100), 123456789u);
  histogram.Reset();
  EXPECT_EQ(histogram.count(), 0u);
}

}  // namespace
}  // namespace tb::bench
