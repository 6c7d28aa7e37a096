// A log-linear latency histogram in the style of HdrHistogram: values below 2·kSubBuckets are
// counted exactly; above that, every power-of-two range is split into kSubBuckets equal buckets,
// so any recorded value is known to within 1/kSubBuckets (0.8 %) of itself, from 1 ns to 2^64 ns,
// in a fixed array (no allocation while recording).
//
//   tb::bench::Histogram histogram;
//   histogram.Record(latency_ns);
//   uint64_t p99 = histogram.ValueAtPercentile(99.0);
//
// Not thread-safe: keep one per thread (or guard it) and Merge() them at the end.
#pragma once

#include <array>
#include <cstdint>

namespace tb::bench {

class Histogram {
 public:
  static constexpr uint32_t kSubBucketBits = 7;
  static constexpr uint32_t kSubBuckets = 1u << kSubBucketBits;  // 128 per power of two.
  // Exact buckets 0..2·kSubBuckets-1, then kSubBuckets per power of two up to bit 63.
  static constexpr uint32_t kBucketCount = 2 * kSubBuckets + (63 - kSubBucketBits) * kSubBuckets;

  void Record(uint64_t value);
  void Merge(const Histogram& other);
  void Reset();

  uint64_t count() const { return count_; }
  uint64_t min() const { return count_ == 0 ? 0 : min_; }
  uint64_t max() const { return max_; }
  double mean() const;
  // The highest value equivalent to the recorded value at `percentile` (0..100]: the smallest
  // bucket whose cumulative count reaches ceil(percentile/100 · count), reported by its upper
  // bound (as HdrHistogram does). 0 when empty. 100 gives max().
  uint64_t ValueAtPercentile(double percentile) const;

  // Bucket arithmetic, exposed for tests.
  static uint32_t BucketIndex(uint64_t value);
  static uint64_t BucketLowest(uint32_t index);
  static uint64_t BucketHighest(uint32_t index);

 private:
  std::array<uint64_t, kBucketCount> counts_{};
  uint64_t count_ = 0;
  uint64_t min_ = UINT64_MAX;
  uint64_t max_ = 0;
  long double sum_ = 0;
};

}  // namespace tb::bench
