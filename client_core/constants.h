// Compile-time limits of the TigerBeetle 0.17.x wire protocol (PROTOCOL.md §1, §10, §11) and the
// relations between them. Runtime settings are validated against these ceilings at start-up.
#pragma once

#include <cstdint>

namespace tb {

inline constexpr uint32_t kHeaderSize = 256;
inline constexpr uint32_t kMessageSizeMax = 1024 * 1024;
inline constexpr uint32_t kMessageBodySizeMax = kMessageSizeMax - kHeaderSize;  // 1,048,320.

// batch_size_limit as announced by a cluster at registration: (0, kMessageBodySizeMax].
inline constexpr uint32_t kBatchSizeLimitMin = 4096 - kHeaderSize;  // 3,840: --limit-request=4096.
inline constexpr uint32_t kBatchSizeLimitMax = kMessageBodySizeMax;

// Multi-batch: n is a u16 in the last two bytes, 65,535 is reserved as padding.
inline constexpr uint32_t kMultiBatchCountMax = 65534;

inline constexpr uint32_t kClientsMaxDefault = 64;        // Sessions per cluster.
inline constexpr uint32_t kReplicaCountMax = 6;           // The official client's array size.
inline constexpr uint32_t kRegisterRequestBodySize = 256;
inline constexpr uint32_t kRegisterResultBodySize = 64;

// Timing of the official client, in ticks of 10 ms (PROTOCOL.md §8.6, §8.7).
inline constexpr uint32_t kTickMs = 10;
inline constexpr uint32_t kRttTicksDefault = 30;
inline constexpr uint32_t kRttMultiple = 2;
inline constexpr uint32_t kRequestTimeoutTicksInitial = kRttTicksDefault * kRttMultiple;  // 600 ms.
inline constexpr uint32_t kRetryJitterTicksMax = 999;
inline constexpr uint32_t kPingIntervalTicks = 3000;  // 30 s.

static_assert(kMessageBodySizeMax == 1048320);
static_assert(kBatchSizeLimitMin < kBatchSizeLimitMax);
static_assert(kHeaderSize + kBatchSizeLimitMax == kMessageSizeMax);

}  // namespace tb
