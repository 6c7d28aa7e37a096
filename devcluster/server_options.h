// Configuration of the dev cluster's TCP server (devcluster/server.h): listen addresses, limits,
// fault injection, and the counters it reports. Validated once at start-up.
//
//   TB_ASSIGN_OR_RETURN(auto addresses,
//                       tb::ParseHostPortList("127.0.0.1:0", {.port_zero_allowed = true}));
//   tb::devcluster::ServerOptions options{.addresses = addresses};
//   TB_RETURN_IF_ERROR(tb::devcluster::ValidateServerOptions(options));
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "client_core/parse.h"
#include "client_core/replica/echo_executor.h"
#include "client_core/replica/message_framer.h"
#include "client_core/replica/replica_protocol.h"
#include "devcluster/constants.h"

namespace tb::devcluster {

// The socket-free replica protocol lives in client_core/replica/; the server uses it as is.
using replica::ConnectionId;
using replica::Decision;
using replica::EchoExecutor;
using replica::ExecuteResult;
using replica::Executor;
using replica::kClientsMaxLimit;
using replica::MessageBytes;
using replica::MessageFramer;
using replica::ReplicaProtocol;
using replica::ReplicaProtocolOptions;
using replica::Send;
using replica::Verdict;
using replica::VerdictName;

// One replica's listen address; port 0 = an ephemeral port (see Server::ports()).
using ListenAddress = HostPort;

// A cost model of a real cluster's primary (not a fault): TigerBeetle turns each client request
// into one prepare (one op; requests are never merged), keeps at most `prepares_max` prepares in
// flight, queues further requests in arrival order (up to `requests_queued_max`, beyond which
// they are dropped and the client retries), and commits ops in order, each after its WAL write
// and replication. Here a request is admitted (executed, op and timestamp assigned) in arrival
// order while fewer than `prepares_max` are in flight, and its reply leaves `prepare_latency`
// after admission, in op order. Registers take part (a register is an op); pings do not.
// A retry of a request that is queued or preparing is dropped, as by a real primary.
// prepare_latency 0 = off (requests commit at once, as before).
struct PipelineOptions {
  // Admission to reply; 0..kPrepareLatencyCeiling.
  absl::Duration prepare_latency = absl::ZeroDuration();
  uint32_t prepares_max = kPipelinePreparesMaxDefault;  // 1..kPipelinePreparesMaxCeiling.
  // 0..kPipelineRequestsQueuedMaxCeiling.
  uint32_t requests_queued_max = kPipelineRequestsQueuedMaxDefault;
};
absl::Status ValidatePipelineOptions(const PipelineOptions& pipeline);

struct FaultOptions {
  absl::Duration reply_delay = absl::ZeroDuration();  // Every reply is held back this long.
  double reply_drop_probability = 0;                  // Replies lost on the way, in [0, 1].
  double connection_reset_probability = 0;  // Per received message: handled, then reset.
  uint64_t seed = 1;                        // Makes the random faults reproducible.
  // Settable at run time with the faults. A reply committed by the pipeline then also waits
  // reply_delay (independently per reply, like a slow network back to the client).
  PipelineOptions pipeline;
};
absl::Status ValidateFaultOptions(const FaultOptions& faults);

struct ServerOptions {
  // One address per replica, in replica order; protocol.replica_count is set from its size.
  std::vector<ListenAddress> addresses = {{"127.0.0.1", 0}};
  ReplicaProtocolOptions protocol;
  // Client connections kept per replica; beyond it a connection is accepted and closed at once.
  uint32_t connections_max = kConnectionsPerReplicaDefault;
  // Bytes queued for one connection; a peer that reads slower is disconnected.
  uint32_t send_queue_bytes_max = kSendQueueBytesMaxDefault;
  uint32_t delayed_replies_max = kDelayedRepliesMaxDefault;  // Beyond it, replies are dropped.
  FaultOptions faults;
  bool log_messages = false;  // One stderr line per drop, close and eviction.
};
absl::Status ValidateServerOptions(const ServerOptions& options);

struct ServerStats {
  uint64_t connections_accepted = 0;
  uint64_t connections_refused = 0;  // Over connections_max.
  uint64_t accept_errors = 0;        // Failed accepts (out of descriptors), retried after 100 ms.
  uint64_t connections_open = 0;
  uint64_t messages_received = 0;
  uint64_t messages_ignored_paused = 0;
  uint64_t replies = 0;      // Newly committed requests answered.
  uint64_t duplicates = 0;   // Stored replies re-sent.
  uint64_t pongs = 0;
  uint64_t evictions = 0;
  uint64_t drops = 0;        // Messages dropped by the protocol.
  uint64_t closes = 0;       // Connections closed by the protocol or framing.
  uint64_t replies_lost = 0;        // Dropped by fault injection or the delay bound.
  uint64_t connections_reset = 0;   // By fault injection or ResetConnections().
  uint64_t slow_readers_closed = 0;
  // The pipeline model (FaultOptions::pipeline).
  uint64_t pipeline_prepares = 0;           // Now in flight.
  uint64_t pipeline_prepares_max_seen = 0;  // The most ever in flight at once.
  uint64_t pipeline_requests_queued = 0;    // Now waiting in the request queue.
  uint64_t pipeline_commits = 0;            // Replies released by the pipeline.
  uint64_t pipeline_ignored = 0;     // Dropped: the client's request is queued or preparing.
  uint64_t pipeline_queue_full = 0;  // Dropped: prepares and request queue were full.
};

}  // namespace tb::devcluster
