// One client connection on the replica side of the protocol (PROTOCOL.md §2): reads the TCP
// stream, cuts it into messages with a MessageFramer, hands each to a handler, and writes what
// the handler sends through a bounded queue.
//
// Writes are gathered: up to kWriteMessagesMax queued messages go out in one async_write with a
// buffer sequence, so a burst of replies costs a few system calls, not one each. The queue holds
// at most write_queue_bytes_max bytes not yet written; a Send() beyond that closes the
// connection (CloseReason::kSlowReader), since a client that does not read would otherwise make
// the server hold its replies without bound.
//
// Lifetime: owned by shared_ptr (made by ReplicaListener). Every pending asio operation holds a
// reference, so the object lives until its last handler ran; once closed, those handlers return
// without calling the handler. The owner may drop its reference in OnClosed.
//
// Threading: every method, and the handler's callbacks, run on the io_context's thread.
//
//   void OnAccepted(std::shared_ptr<ReplicaConnection> connection) override {
//     connections_[id] = connection;
//     connection->Start(id, this);   // OnMessage(...) follows; reply with connection.Send(bytes)
//   }
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <system_error>

#include "absl/status/status.h"
#include "client_core/replica/connection_registry.h"
#include "client_core/replica/message_framer.h"
#include "client_core/replica/session_table.h"
#include "client_core/u128.h"

namespace tb::replica {

namespace internal {
struct ConnectionIo;
}  // namespace internal

class ReplicaConnection;

enum class CloseReason : uint8_t {
  kPeer,          // End of stream, or a read or write failed.
  kFramingError,  // The bytes are not messages of this cluster (CheckFrame).
  kSlowReader,    // A Send() would have passed write_queue_bytes_max.
  kLocal,         // Close() was called.
};
const char* CloseReasonName(CloseReason reason);

// Receives what a started connection reads, and its end. Callbacks may call Send() and Close()
// on any connection, this one included.
class ReplicaConnectionHandler {
 public:
  virtual ~ReplicaConnectionHandler() = default;
  // One whole message that passed CheckFrame (the body checksum is not verified here). The span
  // is valid only during the call.
  virtual void OnMessage(ReplicaConnection& connection, std::span<const uint8_t> message) = 0;
  // Exactly once per started connection, whatever closed it. `status` says why (the framing or
  // I/O error); OK for kLocal. No callback follows.
  virtual void OnClosed(ReplicaConnection& connection, CloseReason reason,
                        const absl::Status& status) = 0;
};

struct ReplicaConnectionOptions {
  u128 cluster = 0;                              // The cluster id messages must carry.
  uint64_t write_queue_bytes_max = 64ull << 20;  // Bytes sent and not yet written, at least 1.
  // Not owned; null: none. Every connection made with these options adds the bytes it has
  // queued and not yet written here (a closed one none), so that their owner can bound them
  // all together. Must outlive the connections.
  std::atomic<uint64_t>* write_queue_bytes_all = nullptr;
};

class ReplicaConnection : public std::enable_shared_from_this<ReplicaConnection> {
 public:
  // Messages gathered into one write at most.
  static constexpr size_t kWriteMessagesMax = 64;

  // Made by ReplicaListener with an accepted socket; not yet reading.
  ReplicaConnection(std::unique_ptr<internal::ConnectionIo> io, uint8_t replica,
                    const ReplicaConnectionOptions& options);
  ~ReplicaConnection();
  ReplicaConnection(const ReplicaConnection&) = delete;
  ReplicaConnection& operator=(const ReplicaConnection&) = delete;

  // Starts reading. Call once. `handler` is not owned and must stay valid until OnClosed ran.
  // A connection dropped without Start() is closed by its destructor, silently.
  void Start(ConnectionId id, ReplicaConnectionHandler* handler);
  // Queues `message` (non-null) for writing, or closes the connection with kSlowReader when the
  // queue would pass its bound. Ignored once closed.
  void Send(MessageBytes message);
  // Closes the socket now and reports kLocal. Idempotent.
  void Close();

  ConnectionId id() const { return id_; }
  uint8_t replica() const { return replica_; }
  bool closed() const { return closed_; }
  uint64_t write_queue_bytes() const { return write_queue_bytes_; }
  uint64_t writes_started() const { return writes_started_; }  // async_write calls so far.

 private:
  void Read();
  void OnRead(const std::error_code& error, size_t size);
  void Write();
  void OnWrite(const std::error_code& error, size_t count);
  void CloseFor(CloseReason reason, const absl::Status& status);
  // Counts `bytes` more (or fewer) as queued, here and in options_.write_queue_bytes_all.
  void AddQueued(uint64_t bytes);
  void RemoveQueued(uint64_t bytes);

  std::unique_ptr<internal::ConnectionIo> io_;
  uint8_t replica_;
  ReplicaConnectionOptions options_;
  MessageFramer framer_;
  ConnectionId id_ = 0;
  ReplicaConnectionHandler* handler_ = nullptr;
  std::deque<MessageBytes> write_queue_;
  uint64_t write_queue_bytes_ = 0;
  uint64_t writes_started_ = 0;
  bool writing_ = false;
  bool closed_ = false;
};

}  // namespace tb::replica
