// A TCP listener on the replica side of the protocol: binds one address, accepts connections
// with TCP_NODELAY and hands each, not yet started, to a handler that starts it (serving it) or
// drops it (refusing it: the socket closes without a message, as a replica beyond its
// connection limit does, PROTOCOL.md §2.4).
//
// A failed accept (out of file descriptors, typically) is reported and retried after
// accept_backoff: the connection stays in the backlog, so retrying at once would fail at once
// and spin the I/O thread.
//
// Lifetime: owned by shared_ptr; pending asio operations hold a reference. After Close() the
// handler is never called again. Threading: Listen() before the io_context runs or on its
// thread; everything else, and the handler's callbacks, on the io_context's thread.
//
//   TB_ASSIGN_OR_RETURN(auto listener, ReplicaListener::Listen(io, {.host = "127.0.0.1"}));
//   listener->Start(&handler);   // handler.OnAccepted(connection) for every connection
//   ...  listener->Close();
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client_core/replica/replica_connection.h"

namespace asio {
class io_context;
}  // namespace asio

namespace tb::replica {

struct ReplicaListenerOptions {
  std::string host = "127.0.0.1";  // A numeric address, or a name resolved for listening.
  uint16_t port = 0;               // 0: an ephemeral port (see port()).
  uint8_t replica = 0;             // Given to every connection (ReplicaConnection::replica()).
  ReplicaConnectionOptions connection;
  absl::Duration accept_backoff = absl::Milliseconds(100);
};

class ReplicaListenerHandler {
 public:
  virtual ~ReplicaListenerHandler() = default;
  // A new connection: Start() it to serve it, or drop it to refuse it.
  virtual void OnAccepted(std::shared_ptr<ReplicaConnection> connection) = 0;
  // An accept failed; the listener retries after accept_backoff.
  virtual void OnAcceptError(const absl::Status& status) = 0;
};

class ReplicaListener : public std::enable_shared_from_this<ReplicaListener> {
 public:
  // Binds and listens on options.host:options.port (kInvalidArgument when the host does not
  // resolve, kUnavailable when it cannot be bound). `io_context` must outlive the listener.
  static absl::StatusOr<std::shared_ptr<ReplicaListener>> Listen(asio::io_context& io_context,
                                                                ReplicaListenerOptions options);
  ~ReplicaListener();
  ReplicaListener(const ReplicaListener&) = delete;
  ReplicaListener& operator=(const ReplicaListener&) = delete;

  // Starts accepting. Call once. `handler` is not owned and must stay valid until Close().
  void Start(ReplicaListenerHandler* handler);
  // Stops accepting and closes the listening socket. Idempotent.
  void Close();
  uint16_t port() const { return port_; }

 private:
  struct Parts;
  ReplicaListener(asio::io_context& io_context, ReplicaListenerOptions options);
  absl::Status Bind();
  void Accept();
  void AcceptAfterBackoff();

  std::unique_ptr<Parts> parts_;
  ReplicaListenerOptions options_;
  ReplicaListenerHandler* handler_ = nullptr;
  uint16_t port_ = 0;
  bool closed_ = false;
};

}  // namespace tb::replica
