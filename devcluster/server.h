// The dev cluster's TCP server: one listener per replica, framing with strict size checks, a
// bounded number of connections per replica and a bounded output queue per connection, all
// driven by a ReplicaProtocol. Runs on a caller-owned asio::io_context with one thread, so
// tbproxy can embed it in-process; asio itself stays out of this header.
//
// Fault injection for tests (all settable at run time): reply delay, replies dropped with a
// probability, connections reset with a probability per received message, pause (every
// message is dropped unread, as by a stalled cluster), reset of every connection at once, and
// view changes that move the primary.
//
//   asio::io_context io;
//   tb::devcluster::EchoExecutor executor;
//   tb::devcluster::Server server(io, &executor, {.addresses = {{"127.0.0.1", 0}}});
//   TB_RETURN_IF_ERROR(server.Start());
//   std::thread thread([&] { io.run(); });   // ... server.Stop(); io.stop(); thread.join();
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "devcluster/executor.h"
#include "devcluster/replica_protocol.h"

namespace asio {
class io_context;
}  // namespace asio

namespace tb::devcluster {

struct ListenAddress {
  std::string host;  // Numeric IPv4/IPv6 address or a resolvable name.
  uint16_t port = 0;  // 0 = an ephemeral port (see Server::ports()).
};

// "127.0.0.1:3000,127.0.0.1:0" (also "3000" for 127.0.0.1:3000, and "[::1]:3000").
absl::StatusOr<std::vector<ListenAddress>> ParseListenAddresses(absl::string_view list);

struct FaultOptions {
  absl::Duration reply_delay = absl::ZeroDuration();  // Every reply is held back this long.
  double reply_drop_probability = 0;                  // Replies lost on the way, in [0, 1].
  double connection_reset_probability = 0;  // Per received message: handled, then reset.
  uint64_t seed = 1;                        // Makes the random faults reproducible.
};
absl::Status ValidateFaultOptions(const FaultOptions& faults);

inline constexpr uint32_t kConnectionsPerReplicaDefault = 32;  // As a real replica (§2.4).
inline constexpr uint32_t kConnectionsPerReplicaMax = 4096;

struct ServerOptions {
  // One address per replica, in replica order; protocol.replica_count is set from its size.
  std::vector<ListenAddress> addresses = {{"127.0.0.1", 0}};
  ReplicaProtocolOptions protocol;
  // Client connections kept per replica; beyond it a connection is accepted and closed at once.
  uint32_t connections_max = kConnectionsPerReplicaDefault;
  // Bytes queued for one connection; a peer that reads slower is disconnected.
  uint32_t send_queue_bytes_max = 32 * 1024 * 1024;
  uint32_t delayed_replies_max = 16 * 1024;  // Beyond it, delayed replies are dropped.
  FaultOptions faults;
  bool log_messages = false;  // One stderr line per drop, close and eviction.
};
absl::Status ValidateServerOptions(const ServerOptions& options);

struct ServerStats {
  uint64_t connections_accepted = 0;
  uint64_t connections_refused = 0;  // Over connections_max.
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
};

class Connection;

class Server {
 public:
  // `io_context` and `executor` are not owned and must outlive the server. `options` must be
  // valid (asserted; check with ValidateServerOptions first).
  Server(asio::io_context& io_context, Executor* executor, ServerOptions options);
  // Closes everything. Destroy on the io_context's thread or while no thread runs it.
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and listens on every address and starts accepting; the io_context must then be run.
  // Call once, before running the io_context or on its thread.
  absl::Status Start();
  // The bound ports, in replica order (after Start()).
  std::vector<uint16_t> ports() const;
  // "127.0.0.1:41234,127.0.0.1:41235": the bound addresses, usable as a client's address list.
  std::string ListeningAddresses() const;

  // The methods below may be called from any thread: they run on the io_context's thread and
  // return when done (so the io_context must be running, unless called on its thread or after
  // it stopped).

  // Stops accepting, closes every connection and cancels delayed replies. Idempotent.
  void Stop();
  void SetView(uint32_t view);  // Views only grow.
  void AdvanceView();           // view + 1: the next replica becomes primary.
  uint32_t view();
  void SetFaults(const FaultOptions& faults);  // Asserted valid.
  void Pause();
  void Resume();
  void ResetConnections();  // Closes every client connection now (sessions survive).
  ServerStats stats();

 private:
  class Impl;
  friend class Connection;  // Server.cc's per-socket class, which talks to Impl.
  std::shared_ptr<Impl> impl_;  // Shared with pending asio handlers, which may outlive Stop().
};

}  // namespace tb::devcluster
