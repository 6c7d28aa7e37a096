// Small helpers shared by the read operations: the timestamp range of a filter and appending
// wire structs to a reply buffer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "devcluster/database.h"

namespace tb::devcluster::internal {

// A filter's inclusive [timestamp_min, timestamp_max] with 0 meaning "unbounded" (§12, §14, §15).
struct TimestampRange {
  // The rules every filter shares: each bound is 0 or in [1, 2^63 − 1], max = 0 or min <= max,
  // and limit != 0.
  static bool Valid(uint64_t timestamp_min, uint64_t timestamp_max, uint32_t limit) {
    return timestamp_min <= kTimestampMax && timestamp_max <= kTimestampMax &&
           (timestamp_max == 0 || timestamp_min <= timestamp_max) && limit != 0;
  }

  TimestampRange(uint64_t timestamp_min, uint64_t timestamp_max)
      : min(timestamp_min == 0 ? 1 : timestamp_min),
        max(timestamp_max == 0 ? kTimestampMax : timestamp_max) {}

  uint64_t min;
  uint64_t max;
};

template <size_t kSize>
bool AllZero(const uint8_t (&bytes)[kSize]) {
  for (uint8_t byte : bytes) {
    if (byte != 0) return false;
  }
  return true;
}

}  // namespace tb::devcluster::internal
