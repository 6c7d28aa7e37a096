// The replica side of the TigerBeetle 0.17.x client protocol, without sockets (PROTOCOL.md §2.3,
// §9, §18): given one framed message that arrived on a connection, decide what a replica does —
// drop it, close the connection, answer with a pong, an eviction, a new reply or the stored
// reply of a duplicate — and produce the exact bytes to send on which connections.
//
// One ReplicaProtocol serves a whole (simulated) cluster of `replica_count` replicas that share
// one session table, one op counter and one view: connections belong to a replica index; only
// the primary (view % replica_count) commits and evicts; a backup answers pings and duplicates
// itself and forwards newer requests and unknown clients' registers to the primary (§9.1
// step 3). Execution is synchronous with an Executor: a request that commits is executed during
// OnMessage(), so there is no pipeline (§9.1 steps 1, 10, 13, 14, 16 never apply). With an
// AsyncExecutor, a request that passes every check is started (Verdict::kPending) and the
// session's request is in progress: identical retries and later requests are dropped (step 13)
// until Complete(token, ...) turns the result into the reply (op and timestamp assigned then,
// the reply stored for duplicates) or the failure into a drop or an eviction. Registers always
// commit at once.
//
// Unlike a real replica, inputs that crash one (client 0, command 0, unknown commands,
// operation 128, a non-zero RegisterRequest) are dropped or close the connection.
//
// Not thread-safe: one owner thread calls everything.
//
//   tb::replica::ReplicaProtocol protocol(options, &executor);
//   protocol.OnConnectionOpened(id, /*replica=*/0);
//   Decision decision = protocol.OnMessage(id, bytes, now_ns);
//   for (const Send& send : decision.sends) Write(send.connection, send.message);
//   for (ConnectionId close : decision.closes) CloseSocket(close);
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/container/inlined_vector.h"
#include "absl/status/status.h"
#include "client_core/constants.h"
#include "client_core/header.h"
#include "client_core/release.h"
#include "client_core/u128.h"
#include "client_core/replica/connection_registry.h"
#include "client_core/replica/executor.h"
#include "client_core/replica/server_messages.h"
#include "client_core/replica/session_table.h"

namespace tb::replica {

// Sessions a dev cluster can be configured to keep (a real cluster keeps 64).
inline constexpr uint32_t kClientsMaxLimit = 1 << 16;

struct ReplicaProtocolOptions {
  u128 cluster = 0;
  uint8_t replica_count = 1;                        // 1..kReplicaCountMax.
  uint32_t clients_max = kClientsMaxDefault;        // Sessions kept, 1..kClientsMaxLimit.
  uint32_t batch_size_limit = kBatchSizeLimitMax;   // kBatchSizeLimitMin..kBatchSizeLimitMax.
  uint32_t release = kReleaseServer;                // The cluster's release.
  uint32_t release_client_min = kReleaseClientMin;  // Oldest client release served.
};

// Names the first bad field, e.g. "batch_size_limit 100 is outside 3840..1048320".
absl::Status ValidateReplicaProtocolOptions(const ReplicaProtocolOptions& options);

enum class Verdict : uint8_t {
  kDrop,       // No answer; the connection stays open (the client retries).
  kClose,      // The arrival connection must be closed (frame error, a second client id).
  kPong,       // A pong_client was sent.
  kReply,      // The request committed and its reply was sent.
  kDuplicate,  // The stored reply of an already committed request was re-sent.
  kEviction,   // An eviction was sent (see eviction_reason).
  kPending,    // The request was started on the AsyncExecutor; Complete() answers it.
};
const char* VerdictName(Verdict verdict);

struct Send {
  ConnectionId connection = 0;
  MessageBytes message;
};

struct Decision {
  Verdict verdict = Verdict::kDrop;
  EvictionReason eviction_reason = EvictionReason::kReserved;  // For kEviction.
  std::string note;  // Why a message was dropped or closed, for logs and tests.
  absl::InlinedVector<Send, 2> sends;
  // Connections the caller must close; contains the arrival connection for kClose. They are
  // already forgotten here (no OnConnectionClosed() needed, though it is harmless).
  absl::InlinedVector<ConnectionId, 1> closes;
};

class ReplicaProtocol {
 public:
  // `options` must be valid (asserted). `executor` is not owned and outlives this object.
  ReplicaProtocol(const ReplicaProtocolOptions& options, Executor* executor);
  // The asynchronous form (see the file comment). `executor` is not owned and outlives this.
  ReplicaProtocol(const ReplicaProtocolOptions& options, AsyncExecutor* executor);

  // Ends the pending request `token` (from AsyncExecutor::Start) with its result: `result.body`
  // is the reply body, `result.timestamp` (> 0) the reply timestamp. If the session was evicted
  // or replaced meanwhile, nothing is sent (kDrop). Unknown tokens are dropped.
  Decision Complete(uint64_t token, ExecuteResult result);
  // Ends it without a result: kDrop clears the in-progress mark (the client's retry executes it
  // again); the others remove the session and send the matching eviction.
  Decision Complete(uint64_t token, CompletionFailure failure);
  size_t pending_count() const { return pending_.size(); }

  // A new connection accepted by `replica`. Ids must be unique for the process lifetime.
  void OnConnectionOpened(ConnectionId connection, uint8_t replica);
  void OnConnectionClosed(ConnectionId connection);

  // `message` is one whole message as framed on the wire (header and body, `size` bytes); it is
  // verified here again (checksums, frame rules, cluster), so any bytes are safe to pass.
  // `now_ns` is the wall clock in ns since the UNIX epoch (it seeds timestamps, §9.4).
  Decision OnMessage(ConnectionId connection, std::span<const uint8_t> message, uint64_t now_ns);
  // OnMessage() for a message that already passed CheckFrame with this cluster (as
  // ReplicaConnection delivers them): the header checksum is not computed again; every other
  // check, the body checksum included, is made as in OnMessage().
  Decision OnFramedMessage(ConnectionId connection, std::span<const uint8_t> message,
                           uint64_t now_ns);

  // Views only grow; the primary is view % replica_count. Raising the view makes duplicates be
  // re-sent with the new view, and pongs and evictions report it.
  void SetView(uint32_t view);
  uint32_t view() const { return view_; }
  uint8_t primary() const { return static_cast<uint8_t>(view_ % options_.replica_count); }

  // The limit registers announce from now on (sessions keep the one they registered with;
  // requests are judged against the current one). kBatchSizeLimitMin..kBatchSizeLimitMax.
  void SetBatchSizeLimit(uint32_t batch_size_limit);

  uint64_t op() const { return op_; }
  const SessionTable& sessions() const { return sessions_; }
  const ConnectionRegistry& connections() const { return connections_; }
  const ReplicaProtocolOptions& options() const { return options_; }

 private:
  struct Arrival;
  // OnMessage() once the header was decoded and its frame rules checked (`frame`).
  Decision OnDecoded(ConnectionId connection, std::span<const uint8_t> message,
                     const Header& header, absl::Status frame, uint64_t now_ns);
  Decision OnPing(const Arrival& arrival, const Header& header);
  Decision OnRequest(const Arrival& arrival, const Header& header, std::span<const uint8_t> body,
                     uint64_t now_ns);
  Decision OnRequestAtBackup(const Arrival& arrival, const RequestHeader& request,
                             std::span<const uint8_t> body, uint64_t now_ns);
  Decision OnRequestAtPrimary(const Arrival& arrival, const RequestHeader& request,
                              std::span<const uint8_t> body, uint64_t now_ns);
  // §9.1 steps 11 and 12 for a request whose client has a session; returns true and fills
  // `decision` when the request must not be executed.
  bool CheckSession(const Arrival& arrival, const RequestHeader& request, Session& session,
                    Decision& decision);
  Decision Commit(const Arrival& arrival, const RequestHeader& request,
                  std::span<const uint8_t> body, uint64_t now_ns);
  Decision StartPending(const Arrival& arrival, const RequestHeader& request,
                        std::span<const uint8_t> body, Session& session);
  // Assigns the next op, builds and stores the reply, and sends it (§9.5).
  Decision FinishCommit(bool forwarded, uint8_t arrival_replica, const RequestHeader& request,
                        uint64_t timestamp, std::span<const uint8_t> reply_body);
  Decision Evict(const Arrival& arrival, u128 client, EvictionReason reason);
  // Eviction of a session whose request was pending, on the client's registered connection.
  Decision EvictPending(u128 client, EvictionReason reason);
  Decision Duplicate(const Arrival& arrival, Session& session);
  void AddSend(Decision& decision, std::optional<ConnectionId> connection,
               const MessageBytes& message) const;
  Sender SenderFor(uint8_t replica) const;

  ReplicaProtocolOptions options_;
  Executor* executor_ = nullptr;
  AsyncExecutor* async_executor_ = nullptr;
  struct PendingCommit {
    bool forwarded = false;
    uint8_t replica = 0;
    RequestHeader request{};
  };
  absl::flat_hash_map<uint64_t, PendingCommit> pending_;  // At most one per session.
  uint64_t next_token_ = 0;
  SessionTable sessions_;
  ConnectionRegistry connections_;
  uint32_t view_ = 0;
  uint64_t op_ = 0;         // The last committed op; op 0 is the root.
  uint64_t timestamp_ = 0;  // The last prepare timestamp.
};

}  // namespace tb::replica
