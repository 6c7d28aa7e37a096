// The operations HTTP listener: Prometheus scrapes and orchestrator probes, apart from gRPC.
//
//   GET /metrics  the registry in the Prometheus text format (version 0.0.4).
//   GET /healthz  200 "ok" while the process serves (liveness).
//   GET /readyz   200 "ready" while `readiness()` returns true, else 503 "not ready".
//
//   auto server = tb::proxy::MetricsHttpServer::Start(
//       {.address = "0.0.0.0:9464"}, metrics.registry(), [&] { return pool.registered() > 0; });
//   if (!server.ok()) return server.status();
//
// It uses civetweb directly (the library prometheus-cpp's own Exposer is built on) because the
// Exposer cannot answer other paths or other status codes. Requests run on civetweb's own small
// thread pool, never on gRPC's or the pool's threads.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"

struct mg_context;
struct mg_connection;

namespace prometheus {
class Registry;
}  // namespace prometheus

namespace tb::proxy {

struct MetricsHttpOptions {
  // "host:port" to listen on; port 0 picks a free one (see port()). IPv4 only.
  std::string address = "0.0.0.0:9464";
  // civetweb worker threads: scrapes and probes are rare and cheap, two is plenty.
  uint32_t threads = 2;
};

inline constexpr uint32_t kMetricsHttpThreadsMax = 16;

class MetricsHttpServer {
 public:
  // Must be thread-safe, fast and non-blocking: it runs on every /readyz probe.
  using Readiness = absl::AnyInvocable<bool() const>;

  // kInvalidArgument for a malformed address or a thread count outside 1..16; kUnavailable when
  // the port cannot be bound.
  static absl::StatusOr<std::unique_ptr<MetricsHttpServer>> Start(
      const MetricsHttpOptions& options, std::shared_ptr<prometheus::Registry> registry,
      Readiness readiness);

  // Stops listening and waits for requests being served to finish.
  ~MetricsHttpServer();
  MetricsHttpServer(const MetricsHttpServer&) = delete;
  MetricsHttpServer& operator=(const MetricsHttpServer&) = delete;

  // The port actually bound (useful with port 0).
  uint16_t port() const { return port_; }

 private:
  MetricsHttpServer(std::shared_ptr<prometheus::Registry> registry, Readiness readiness);

  static int HandleMetrics(mg_connection* connection, void* server);
  static int HandleHealth(mg_connection* connection, void* server);
  static int HandleReady(mg_connection* connection, void* server);

  const std::shared_ptr<prometheus::Registry> registry_;
  const Readiness readiness_;
  mg_context* context_ = nullptr;
  uint16_t port_ = 0;
};

}  // namespace tb::proxy
