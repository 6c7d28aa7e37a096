// The dev cluster's limits and defaults, each with its reason, in one place (as TigerBeetle's
// src/constants.zig). Settings (ServerOptions, tb-devcluster's flags) default to the *Default
// values and are checked against the *Ceiling values at start-up; relations are static_asserts.
#pragma once

#include <cstdint>

#include "absl/time/time.h"
#include "client_core/constants.h"

namespace tb::devcluster {

// TigerBeetle 0.17.x: pipeline_prepare_queue_max = 8 (src/config.zig).
inline constexpr uint32_t kPipelinePreparesMaxDefault = 8;
// TigerBeetle 0.17.x: --limit-pipeline-requests defaults to div_ceil(clients_max, 2) - 8 = 24
// (src/tigerbeetle/cli.zig); at most clients_max + 1 - 8 = 57 (src/constants.zig).
inline constexpr uint32_t kPipelineRequestsQueuedMaxDefault = 24;
// Far above any real cluster's pipeline; only bounds the model's memory.
inline constexpr uint32_t kPipelinePreparesMaxCeiling = 1024;
inline constexpr uint32_t kPipelineRequestsQueuedMaxCeiling = 1024;
// A modelled WAL write and replication longer than this is a mistake, not a model.
inline constexpr absl::Duration kPrepareLatencyCeiling = absl::Minutes(1);
// Long enough to outlast every client timeout; longer only keeps memory busy.
inline constexpr absl::Duration kReplyDelayCeiling = absl::Minutes(10);

// Client connections a real replica serves at once (PROTOCOL.md §2.4).
inline constexpr uint32_t kConnectionsPerReplicaDefault = 32;
// One file descriptor and one read buffer each; load tests use more than a real replica allows.
inline constexpr uint32_t kConnectionsPerReplicaCeiling = 4096;
// Bytes queued for one connection before a slower reader is disconnected: 32 maximal replies.
inline constexpr uint32_t kSendQueueBytesMaxDefault = 32 * kMessageSizeMax;
// Delayed replies (fault injection) held at once; beyond it they are dropped (a lost reply).
inline constexpr uint32_t kDelayedRepliesMaxDefault = 16 * 1024;
// The state machine's clock advances on this tick (pulses, expiries), as a replica's would.
inline constexpr absl::Duration kStateMachineTickInterval = absl::Milliseconds(100);

static_assert(kPipelinePreparesMaxDefault <= kPipelinePreparesMaxCeiling);
static_assert(kPipelineRequestsQueuedMaxDefault <= kPipelineRequestsQueuedMaxCeiling);
static_assert(kConnectionsPerReplicaDefault <= kConnectionsPerReplicaCeiling);
static_assert(kSendQueueBytesMaxDefault >= kMessageSizeMax, "a queue holds one message at least");

}  // namespace tb::devcluster
