// The operations HTTP listener: Prometheus scrapes and orchestrator probes, apart from gRPC.
//
//   GET /metrics  what `exposition()` returns (Metrics::Exposition: Prometheus text 0.0.4).
//   GET /healthz  200 "ok" while the process serves (liveness).
//   GET /readyz   200 "ready" while `readiness()` returns true, else 503 "not ready".
//
//   auto server = tb::proxy::MetricsHttpServer::Start(
//       {.address = "0.0.0.0:9464"}, [&metrics] { return metrics.Exposition(); },
//       [&pool] { return pool.ready(); });
//   if (!server.ok()) return server.status();
//
// It uses civetweb directly (the library prometheus-cpp's own Exposer is built on) because the
// Exposer cannot answer other paths or other status codes. Requests run on civetweb's own small
// thread pool, never on gRPC's or the pool's threads.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <memory>
#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"

struct mg_context;
struct mg_connection;

namespace tb::proxy {

struct MetricsHttpOptions {
  // "host:port" to listen on, the host numeric (IPv6 in brackets); port 0 picks a free one
  // (see port()).
  std::string address = "0.0.0.0:9464";
  // civetweb worker threads: scrapes and probes are rare and cheap, two is plenty.
  uint32_t threads = 2;
};

inline constexpr uint32_t kMetricsHttpThreadsMax = 16;

class MetricsHttpServer {
 public:
  // Both must be thread-safe and must not block for long: they run on civetweb's threads.
  using Exposition = absl::AnyInvocable<std::string()>;
  using Readiness = absl::AnyInvocable<bool()>;

  // kInvalidArgument for a malformed address or a thread count outside 1..16; kUnavailable when
  // the port cannot be bound.
  static absl::StatusOr<std::unique_ptr<MetricsHttpServer>> Start(
      const MetricsHttpOptions& options, Exposition exposition, Readiness readiness);

  // Stops listening and waits for requests being served to finish.
  ~MetricsHttpServer();
  MetricsHttpServer(const MetricsHttpServer&) = delete;
  MetricsHttpServer& operator=(const MetricsHttpServer&) = delete;

  // The port actually bound (useful with port 0).
  uint16_t port() const { return port_; }

 private:
  MetricsHttpServer(Exposition exposition, Readiness readiness);

  // Connects to the listener (and closes at once) to end civetweb's poll of it.
  void WakeListener() const;

  static int HandleMetrics(mg_connection* connection, void* server);
  static int HandleHealth(mg_connection* connection, void* server);
  static int HandleReady(mg_connection* connection, void* server);

  Exposition exposition_;
  Readiness readiness_;
  mg_context* context_ = nullptr;
  uint16_t port_ = 0;
  // Where WakeListener connects: the bound address, loopback for a wildcard one.
  sockaddr_storage own_address_{};
  socklen_t own_address_length_ = 0;
};

}  // namespace tb::proxy
