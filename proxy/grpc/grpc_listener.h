// The gRPC front end's TCP listener, with a bound on client connections open at once. gRPC 1.51
// sets none, so tbproxy accepts connections itself, hands each to gRPC (its external connection
// acceptor, `handoff` below) and closes at accept any beyond `connections_max` open.
//
// gRPC does not say when it closes a connection, so the open count is a recount of the sockets
// handed off (HandedOffSockets): every `recount_interval`, and when a connection arrives at the
// bound if the last recount is older than `refusal_recount_interval_min` (so a place freed is
// seen within that, and a flood of refused connections costs at most one recount per interval).
//
//   TB_ASSIGN_OR_RETURN(auto listener, GrpcListener::Listen({.host = "127.0.0.1", .port = 0}));
//   listener->Start([acceptor](int fd, int listener_fd) { ... gRPC takes fd ... });
//   ... listener->port(), listener->stats() ...
//   listener->Stop();  // no new connections; those handed off stay gRPC's
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "proxy/constants.h"

namespace tb::proxy {

struct GrpcListenerOptions {
  // A numeric address or a name; every address a name resolves to is bound (as gRPC does), and
  // it is enough that one of them can be. A wildcard (0.0.0.0 or ::) serves IPv4 and IPv6.
  std::string host = "127.0.0.1";
  uint16_t port = 0;  // 0: a free port, the same on every address (port()).
  uint32_t connections_max = kGrpcConnectionsMaxDefault;
  // TCP_USER_TIMEOUT of every connection, as gRPC's own listener sets it from the keepalive
  // timeout: unacknowledged data for this long closes the connection. Zero: the kernel's.
  absl::Duration tcp_user_timeout = absl::ZeroDuration();
  absl::Duration recount_interval = absl::Seconds(1);
  absl::Duration refusal_recount_interval_min = absl::Milliseconds(100);
  // A failed accept (out of file descriptors, typically) is retried after this, not at once:
  // the connection stays in the backlog, so an immediate retry would fail again and spin.
  absl::Duration accept_backoff = absl::Milliseconds(100);
};

struct GrpcListenerStats {
  uint64_t open = 0;           // Connections handed off and open at the last count.
  uint64_t refused = 0;        // Closed at accept: `connections_max` were open.
  uint64_t accept_errors = 0;  // Failed accepts.
};

class GrpcListener {
 public:
  // Takes an accepted socket: `fd` is non-blocking, with TCP_NODELAY (and TCP_USER_TIMEOUT if
  // set), and now the callee's to close. `listener_fd` is the listening socket it came from.
  using Handoff = absl::AnyInvocable<void(int fd, int listener_fd)>;

  // Binds and listens; accepts nothing before Start. kInvalidArgument when `host` does not
  // resolve, kUnavailable when no address can be bound (the error names the address).
  static absl::StatusOr<std::unique_ptr<GrpcListener>> Listen(const GrpcListenerOptions& options);
  ~GrpcListener();  // Stops.
  GrpcListener(const GrpcListener&) = delete;
  GrpcListener& operator=(const GrpcListener&) = delete;

  // Starts accepting on a thread of its own (tb-grpc-accept), which calls `handoff`. Call once.
  void Start(Handoff handoff);
  // Closes the listening sockets and joins the thread; `handoff` is not called after it
  // returns. Idempotent. Call from any thread but the listener's.
  void Stop();

  uint16_t port() const;
  // Thread-safe.
  GrpcListenerStats stats() const;

 private:
  struct Parts;
  explicit GrpcListener(std::unique_ptr<Parts> parts);

  std::unique_ptr<Parts> parts_;
};

}  // namespace tb::proxy
