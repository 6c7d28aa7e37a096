// tbproxy's limits and fixed intervals, each with its reason, in one place (as TigerBeetle's
// src/constants.zig). Settings (proxy/app/config.h) are checked against the *Floor and *Ceiling
// values at start-up; fixed values that are not settings are named here. The coalescer's own
// ceilings are in proxy/coalescer/coalescer_options.h, the pool's in pool/constants.h.
#pragma once

#include <cstddef>
#include <cstdint>

#include "absl/time/time.h"
#include "client_core/constants.h"
#include "client_core/replica/replica_protocol.h"
#include "pool/constants.h"

namespace tb::proxy {

// ---- gRPC front end ----
// Below this even a batch of a few hundred 128-byte events would be refused.
inline constexpr uint32_t kGrpcMessageSizeMaxFloor = 64 * 1024;
// Beyond this one message could hold the memory meant for many callers' queues.
inline constexpr uint32_t kGrpcMessageSizeMaxCeiling = 256 * 1024 * 1024;
// gRPC allocates per stream; a client needing more should open another connection.
inline constexpr uint32_t kGrpcStreamsMaxCeiling = 100'000;
// A unary call's ordering-key name (metadata tbproxy-ordering-key): a name, not a payload.
inline constexpr size_t kOrderingKeyNameBytesMax = 128;
// Calls pipelined on one Stream RPC: each holds a reply slot until written in order.
inline constexpr uint32_t kStreamCallsMaxCeiling = 4096;
// Stream RPCs open at once over all clients: gRPC holds about 17 KiB for each idle one, so the
// default costs about 170 MiB and the ceiling about 1.7 GiB.
inline constexpr uint32_t kStreamRpcsMaxDefault = 10'000;
inline constexpr uint32_t kStreamRpcsMaxCeiling = 100'000;

// Client connections at once (gRPC 1.51 sets no bound of its own): one file descriptor each and
// gRPC's per-connection state, about 16 KiB while idle, so the default holds about 64 MiB.
inline constexpr uint32_t kGrpcConnectionsMaxDefault = 4096;
inline constexpr uint32_t kGrpcConnectionsMaxCeiling = 1 << 16;

// Memory that gRPC calls not yet done may hold (CallMemoryBudget): a call keeps its request and
// response until the client reads the response. The floor holds the largest call (a lookup of
// 8,189 accounts reserves about 4.5 MiB, a raw call at most about 8 MiB).
inline constexpr uint64_t kGrpcCallMemoryMaxDefault = 512ull << 20;
inline constexpr uint64_t kGrpcCallMemoryMaxFloor = 16ull << 20;
inline constexpr uint64_t kGrpcCallMemoryMaxCeiling = 64ull << 30;

// ---- Cluster sessions ----
// Each registered session holds one of the budget's slots.
inline constexpr uint32_t kSessionsMaxCeiling = pool::kSessionBudgetMax;

// ---- Native front end ----
// Virtual sessions are kept by the same session table as a dev cluster's clients.
inline constexpr uint32_t kNativeSessionsMaxCeiling = replica::kClientsMaxLimit;
// One file descriptor and one read buffer (a maximal message) each.
inline constexpr uint32_t kNativeConnectionsMaxDefault = 4096;
inline constexpr uint32_t kNativeConnectionsMaxCeiling = 1 << 16;
// Replies queued for one connection before a slower reader is disconnected: 64 maximal replies.
inline constexpr uint64_t kNativeWriteQueueBytesMaxDefault = 64ull * kMessageSizeMax;
// Replies queued for every native connection together: when a reply would pass it, the
// connections holding the most unread replies are closed, the slowest readers first.
inline constexpr uint64_t kNativeWriteQueueBytesTotalMaxDefault = 256ull << 20;
inline constexpr uint64_t kNativeWriteQueueBytesTotalMaxCeiling = 64ull << 30;
// Must hold one maximal reply; beyond 1 GiB one connection could hold all of tbproxy's memory.
inline constexpr uint64_t kNativeWriteQueueBytesMaxFloor = kMessageSizeMax;
inline constexpr uint64_t kNativeWriteQueueBytesMaxCeiling = 1ull << 30;
// A native request not answered by then fails (clients retry): far above a healthy cluster's
// latency, below the official clients' own give-up time.
inline constexpr absl::Duration kNativeRequestTimeout = absl::Seconds(30);

// ---- Shutdown and housekeeping ----
// Deadlines of queued and in-flight calls are checked this often on the pool's thread: a caller
// learns of its deadline at most this late.
inline constexpr absl::Duration kDeadlineSweepInterval = absl::Milliseconds(10);
// On drain the pool gets at least this long for replies in flight, even past drain-timeout.
inline constexpr absl::Duration kPoolDrainMin = absl::Seconds(1);
// gRPC's Shutdown runs once the pool has answered every call; it cancels what is still open
// this long after (a stream whose client does not read its last responses), without our outcome.
inline constexpr absl::Duration kDrainFinishMargin = absl::Seconds(3);
// After the pool drained, new gRPC calls are held until none has arrived for kDrainQuiet (at most
// kDrainSettleMax) before gRPC's Shutdown, so that callers waiting for them are not sending
// calls that gRPC would cancel (proxy/grpc/grpc_drain.h)...
inline constexpr absl::Duration kDrainQuiet = absl::Milliseconds(200);
inline constexpr absl::Duration kDrainSettleMax = absl::Seconds(1);
// ... and are refused this long after Shutdown began: its GOAWAY has reached the clients, so
// their next calls go to a new connection instead of into gRPC's cancellation.
inline constexpr absl::Duration kDrainGoawayWait = absl::Milliseconds(100);

static_assert(kGrpcMessageSizeMaxFloor <= kGrpcMessageSizeMaxCeiling);
static_assert(kGrpcMessageSizeMaxCeiling >= kMessageSizeMax, "a maximal request fits");
static_assert(kStreamRpcsMaxDefault <= kStreamRpcsMaxCeiling);
static_assert(kGrpcConnectionsMaxDefault <= kGrpcConnectionsMaxCeiling);
static_assert(kGrpcCallMemoryMaxFloor <= kGrpcCallMemoryMaxDefault);
static_assert(kGrpcCallMemoryMaxDefault <= kGrpcCallMemoryMaxCeiling);
static_assert(kNativeConnectionsMaxDefault <= kNativeConnectionsMaxCeiling);
static_assert(kNativeWriteQueueBytesMaxFloor <= kNativeWriteQueueBytesMaxDefault);
static_assert(kNativeWriteQueueBytesMaxDefault <= kNativeWriteQueueBytesMaxCeiling);
static_assert(kNativeWriteQueueBytesMaxFloor <= kNativeWriteQueueBytesTotalMaxDefault);
static_assert(kNativeWriteQueueBytesTotalMaxDefault <= kNativeWriteQueueBytesTotalMaxCeiling);
static_assert(kDrainQuiet <= kDrainSettleMax);
static_assert(kDrainGoawayWait < kDrainFinishMargin,
              "held calls are answered before gRPC's Shutdown deadline cancels them");

}  // namespace tb::proxy
