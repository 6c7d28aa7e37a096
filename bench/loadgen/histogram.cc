#include "bench/loadgen/histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

#include "client_core/assert.h"

namespace tb::bench {

uint32_t Histogram::BucketIndex(uint64_t value) {
  if (value < 2 * kSubBuckets) return static_cast<uint32_t>(value);
  const uint32_t msb = 63 - static_cast<uint32_t>(std::countl_zero(value));  // >= kSubBucketBits+1
  const uint32_t shift = msb - kSubBucketBits;                                 // >= 1
  const uint64_t top = value >> shift;                                         // [128, 255]
  TB_ASSERT(top >= kSubBuckets && top < 2 * kSubBuckets);
  const uint32_t index = 2 * kSubBuckets + (shift - 1) * kSubBuckets +
                         static_cast<uint32_t>(top - kSubBuckets);
  TB_ASSERT(index < kBucketCount);
  return index;
}

uint64_t Histogram::BucketLowest(uint32_t index) {
  TB_ASSERT(index < kBucketCount);
  if (index < 2 * kSubBuckets) return index;
  const uint32_t shift = (index - 2 * kSubBuckets) / kSubBuckets + 1;
  const uint64_t top = kSubBuckets + (index - 2 * kSubBuckets) % kSubBuckets;
  return top << shift;
}

uint64_t Histogram::BucketHighest(uint32_t index) {
  TB_ASSERT(index < kBucketCount);
  if (index < 2 * kSubBuckets) return index;
  const uint32_t shift = (index - 2 * kSubBuckets) / kSubBuckets + 1;
  return BucketLowest(index) + ((uint64_t{1} << shift) - 1);
}

void Histogram::Record(uint64_t value) {
  counts_[BucketIndex(value)]++;
  count_++;
  min_ = std::min(min_, value);
  max_ = std::max(max_, value);
  sum_ += static_cast<long double>(value);
}

void Histogram::Merge(const Histogram& other) {
  for (uint32_t i = 0; i < kBucketCount; i++) counts_[i] += other.counts_[i];
  count_ += other.count_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
  sum_ += other.sum_;
}

void Histogram::Reset() { *this = Histogram(); }

double Histogram::mean() const {
  return count_ == 0 ? 0.0 : static_cast<double>(sum_ / static_cast<long double>(count_));
}

uint64_t Histogram::ValueAtPercentile(double percentile) const {
  if (count_ == 0) return 0;
  const double clamped = std::clamp(percentile, 0.0, 100.0);
  uint64_t rank = static_cast<uint64_t>(std::ceil(clamped / 100.0 * static_cast<double>(count_)));
  rank = std::clamp<uint64_t>(rank, 1, count_);
  uint64_t seen = 0;
  for (uint32_t i = 0; i < kBucketCount; i++) {
    seen += counts_[i];
    if (seen >= rank) return std::min(BucketHighest(i), max_);
  }
  TB_ASSERT(false, "histogram counts do not add up to count_");
  return max_;
}

}  // namespace tb::bench
