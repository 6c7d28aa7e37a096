// Builds and runs the gRPC server of tbproxy: listening address (on its own listener, which bounds
// client connections: GrpcListener), TLS or mutual TLS, message and stream limits, keepalive
// policy, grpc.health.v1 and server reflection.
//
// Health: the default health service answers for "" and "tbproxy.v1.TigerBeetle"; a thread
// polls `readiness` every `readiness_poll_interval` and sets SERVING / NOT_SERVING when it
// changes (Health/Watch streams get one message per change).
//
//   TB_ASSIGN_OR_RETURN(std::unique_ptr<GrpcServer> server, GrpcServer::Start(options, &service));
//   ... server->port() ...
//   server->Shutdown(absl::Now() + absl::Seconds(10));  // Drains calls in flight.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "proxy/constants.h"
#include "proxy/grpc/grpc_listener.h"

namespace grpc {
class Server;
class Service;
namespace experimental {
class ExternalConnectionAcceptor;
}  // namespace experimental
}  // namespace grpc

namespace tb::proxy {

struct GrpcTlsOptions {
  std::string certificate_file;  // PEM chain. Empty: plaintext (then the other two are empty).
  std::string private_key_file;  // PEM.
  // PEM CA bundle. Non-empty: mutual TLS, clients must present a certificate it signed.
  std::string client_ca_file;
};

struct GrpcServerOptions {
  std::string listen_address = "127.0.0.1:50051";  // host:port; port 0 picks a free port.
  GrpcTlsOptions tls;
  int message_size_max_bytes = 16 * 1024 * 1024;  // Receive and send.
  int streams_max = 1000;  // Concurrent HTTP/2 streams per connection.
  // Client connections open at once; more are closed at accept (GrpcListener).
  uint32_t connections_max = kGrpcConnectionsMaxDefault;
  absl::Duration keepalive_time = absl::Seconds(60);  // Server pings an idle connection.
  absl::Duration keepalive_timeout = absl::Seconds(20);  // ... and closes it without a pong.
  absl::Duration client_ping_interval_min = absl::Seconds(10);  // Faster client pings: GOAWAY.
  std::function<bool()> readiness;  // Null: always serving.
  // How late health checks may learn of a readiness change; a poll that finds no change costs a
  // call of `readiness` and nothing else.
  absl::Duration readiness_poll_interval = absl::Milliseconds(100);
};

class GrpcServer {
 public:
  // Registers `service` (which must outlive the server) and starts listening. Errors name the
  // setting: an unreadable TLS file, an address that cannot be bound.
  static absl::StatusOr<std::unique_ptr<GrpcServer>> Start(const GrpcServerOptions& options,
                                                           grpc::Service* service);
  ~GrpcServer();  // Shuts down at once if Shutdown was not called.

  int port() const { return port_; }
  // The listener's connection counts (tbproxy_grpc_connections*). Thread-safe.
  GrpcListenerStats connection_stats() const { return listener_->stats(); }
  // Health checks answer NOT_SERVING from now on; calls are still served. Idempotent; call from
  // one thread, the one that later calls Shutdown.
  void StopServing();
  // Stops accepting calls, waits for calls in flight until `deadline`, then cancels the rest.
  // Returns when every call is done. Call once, from any thread but a gRPC callback.
  void Shutdown(absl::Time deadline);

 private:
  GrpcServer() = default;
  // Until StopServing: copies readiness changes into the health service, which shows `serving`.
  void PollReadiness(bool serving);

  // Declared in this order so that the listener, which hands connections to the acceptor, goes
  // first.
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<grpc::experimental::ExternalConnectionAcceptor> acceptor_;
  std::unique_ptr<GrpcListener> listener_;
  int port_ = 0;
  std::function<bool()> readiness_;
  absl::Duration readiness_poll_interval_;
  absl::Notification stopping_;
  std::thread readiness_thread_;
  bool serving_stopped_ = false;
  bool shut_down_ = false;
};

}  // namespace tb::proxy
