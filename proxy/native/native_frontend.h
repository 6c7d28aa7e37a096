// The native TigerBeetle-protocol front end: official TigerBeetle clients point `addresses` at
// tbproxy and change nothing else. A TCP listener speaks the replica side of the client protocol
// (client_core/replica/ReplicaProtocol, as one replica of a one-replica cluster) with virtual
// sessions kept here, and runs each request's batches through the Submitter (NativeExecutor), so
// many client processes share the proxy's few cluster sessions.
//
// Bounds: at most `sessions_max` virtual sessions (the least recently committed one is evicted
// when a new client registers; it learns no_session on its next message), at most
// `connections_max` connections (more are closed at accept), at most one maximal message
// buffered per connection for reading and `write_queue_bytes_max` queued for writing (a client
// that lets more pile up is closed as a slow reader). Connections are
// client_core/replica/ReplicaConnection, on the caller's io_context, which one thread runs
// (tbproxy: the pool's, so that a call crosses no thread between the client's socket and the
// cluster session; bench/PROFILE.md).
//
// Until SetBatchSizeLimit() is called (the smallest limit among the pool's registered
// sessions), every message is dropped: a register must never announce a limit the cluster
// would refuse. Clients retry, so they simply wait.
//
// Lifetime: Stop() closes the listener and every connection, once the io_context is stopped.
// Destroy the object only after the Submitter has run every callback of the calls it was given
// (main: after the pool drained), and before the io_context.
//
//   auto frontend = NativeFrontend::Start(io, {.host = "127.0.0.1", .port = 3000}, &submitter);
//   (*frontend)->SetBatchSizeLimit(limit);
//   ...
//   (*frontend)->Stop();
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client_core/header.h"
#include "client_core/u128.h"
#include "proxy/constants.h"
#include "proxy/submitter.h"

namespace asio {
class io_context;
}  // namespace asio

namespace tb::proxy {

struct NativeFrontendOptions {
  std::string host = "127.0.0.1";  // Numeric address to bind.
  uint16_t port = 0;               // 0 = ephemeral (see port()).
  u128 cluster = 0;                // The cluster id clients must use.
  uint32_t sessions_max = 10'000;  // Virtual sessions, 1..kNativeSessionsMaxCeiling.
  uint32_t connections_max = kNativeConnectionsMaxDefault;  // 1..kNativeConnectionsMaxCeiling.
  // Per connection, kNativeWriteQueueBytesMaxFloor..kNativeWriteQueueBytesMaxCeiling.
  uint64_t write_queue_bytes_max = kNativeWriteQueueBytesMaxDefault;
  // Every connection together, at least one maximal reply (kNativeWriteQueueBytesMaxFloor): a
  // reply that would pass it first closes the connections holding the most unread replies,
  // largest first (counted as slow readers), which may be its own.
  uint64_t write_queue_bytes_total_max = kNativeWriteQueueBytesTotalMaxDefault;
  // How long a request's batches may wait for the Submitter before the virtual session is
  // evicted (NativeExecutor); positive.
  absl::Duration request_timeout = kNativeRequestTimeout;
};

// Counters only grow; connections_open and sessions are current values.
struct NativeFrontendStats {
  uint64_t connections_open = 0;
  uint64_t connections_refused = 0;
  uint64_t accept_errors = 0;  // Failed accepts (out of descriptors, say), each retried after 100 ms.
  // Connections closed with write_queue_bytes_max queued, or holding the most when the total
  // reached write_queue_bytes_total_max.
  uint64_t slow_readers_closed = 0;
  uint64_t reply_bytes_queued = 0;  // Replies queued and not yet written, every connection.
  uint64_t sessions = 0;  // Virtual sessions in the table.
  uint64_t requests = 0;  // Request messages received (registers included), whatever became of them.
  uint64_t batches = 0;   // Batches handed to the Submitter (a multi-batch request gives several).
  uint64_t replies = 0;   // Replies sent, duplicates included.
  uint64_t duplicates = 0;  // Requests answered with the reply stored for them.
  uint64_t evictions = 0;   // Eviction messages sent, whatever the reason (the sum below).
  // Eviction messages sent, by wire reason (index 1..kEvictionReasonMax; 0 for any other).
  std::array<uint64_t, kEvictionReasonMax + 1> evictions_by_reason{};
  uint64_t drops = 0;
  uint64_t closes = 0;  // Connections closed for a framing or protocol error.
};

class NativeFrontend {
 public:
  static absl::StatusOr<std::unique_ptr<NativeFrontend>> Start(
      asio::io_context& io, const NativeFrontendOptions& options, Submitter* submitter);
  ~NativeFrontend();  // Stops if Stop() was not called.
  NativeFrontend(const NativeFrontend&) = delete;
  NativeFrontend& operator=(const NativeFrontend&) = delete;

  uint16_t port() const;
  // Any thread. Values outside kBatchSizeLimitMin..kBatchSizeLimitMax are ignored.
  void SetBatchSizeLimit(uint32_t batch_size_limit);
  // Any thread; a snapshot.
  NativeFrontendStats stats() const;
  // Closes the listener and every connection. Call it once the io_context is stopped
  // (io_context::stop; nothing runs it any more). Idempotent.
  void Stop();

  struct Parts;

 private:
  explicit NativeFrontend(std::unique_ptr<Parts> parts);
  std::unique_ptr<Parts> parts_;
};

}  // namespace tb::proxy
