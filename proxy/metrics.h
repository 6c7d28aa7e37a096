// Prometheus metrics of tbproxy: one registry, typed recording methods, bounded labels.
//
// Every series is named `tbproxy_*` in base units (`_seconds`, `_bytes`, `_total`). Labels only
// ever take values from fixed tables: operation names from the operation table, outcome and
// reason names from enums, result status names from TigerBeetle's status tables. Nothing per
// caller, per client id or per account becomes a label, so the series count stays bounded.
//
//   tb::proxy::Metrics metrics({.version = "0.1.0"});
//   metrics.RecordRequest(146, absl::StatusCode::kOk, /*event_count=*/10);
//   tb::proxy::MetricsHttpServer server(...);  // serves metrics.registry() (metrics_http.h)
//
// All methods are thread-safe and never block for long (prometheus-cpp uses atomics and short
// critical sections), so they may be called from gRPC handlers and the pool's I/O thread alike.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace prometheus {
class Counter;
class Gauge;
class Histogram;
class Registry;
template <typename T>
class Family;
}  // namespace prometheus

namespace tb::proxy {

struct MetricsOptions {
  std::string version = "0.0.0";           // tbproxy's own version, for tbproxy_build_info.
  std::string tigerbeetle_release = "0.17";  // The wire release it speaks.
};

// Why a request was refused before it was queued (tbproxy_refusals_total{reason}).
enum class RefusalReason : uint8_t {
  kQueuedEventsFull,   // The queue holds its maximum number of events.
  kQueuedBytesFull,    // The queue holds its maximum number of bytes.
  kCallersFull,        // Too many callers wait at once.
  kInvalidRequest,     // The request breaks a rule (size, count, operation).
  kShuttingDown,       // Intake is closed while the proxy drains.
  kUnavailable,        // No session can carry it (cluster unreachable).
};
inline constexpr size_t kRefusalReasonCount = 6;
absl::string_view RefusalReasonName(RefusalReason reason);

// The shape of one message handed to a session (observed once per message).
struct MessageStats {
  uint8_t operation = 0;
  uint32_t event_count = 0;
  uint32_t batch_count = 0;
  uint32_t body_size = 0;          // Bytes of the request body.
  uint32_t batch_size_limit = 0;   // The session's limit the body had to fit; 0 = unknown.
  absl::Duration queue_wait;       // From its oldest batch's arrival to being taken by a session.
};

class Metrics {
 public:
  explicit Metrics(const MetricsOptions& options);
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // The registry to expose (MetricsHttpServer) or to collect from in tests.
  std::shared_ptr<prometheus::Registry> registry() const { return registry_; }

  // ---- Front end -------------------------------------------------------------------------
  // One finished call: its operation, final status code and number of events it carried.
  // tbproxy_requests_total{operation,outcome} += 1, tbproxy_events_total{...} += event_count.
  void RecordRequest(uint8_t operation, absl::StatusCode code, uint32_t event_count);
  // From the call's arrival to its results being handed back (tbproxy_request_duration_seconds).
  void RecordRequestDuration(uint8_t operation, absl::Duration duration);
  // gRPC calls accepted and not yet finished (tbproxy_grpc_calls_in_flight); delta is ±1.
  void AddGrpcCallsInFlight(int64_t delta);
  // `count` results of `operation` carried `status` (a CreateAccountStatus/CreateTransferStatus
  // value for 146/147; anything else is counted as "unknown").
  void RecordResultStatus(uint8_t operation, uint32_t status, uint64_t count);

  // ---- Coalescer ---------------------------------------------------------------------------
  void RecordMessage(const MessageStats& stats);
  void SetQueued(uint64_t events, uint64_t bytes);
  void RecordRefusal(RefusalReason reason);

  // ---- Session pool ------------------------------------------------------------------------
  void RecordRoundTrip(uint8_t operation, absl::Duration round_trip);
  void SetSessionsRegistered(uint32_t sessions);
  void SetSessionBudget(uint32_t sessions);  // Configured cluster slots this proxy may use.
  // `reason` is the wire value (1..8, PROTOCOL.md §6.5); others count as "unknown".
  void RecordEviction(uint8_t reason);
  void RecordSessionLost();      // Given up without an eviction (tbproxy_sessions_lost_total).
  void RecordSessionReplaced();  // A new session took a lost one's place.
  // A request timed out and was re-sent with the same bytes (tbproxy_request_resends_total).
  void RecordResend();
  void RecordViewChange(uint32_t view);
  void RecordKeepWarm();
  void RecordPoolFailed();

 private:
  struct OperationSeries;  // Pre-created series of one forwardable operation.
  struct Families;         // The families, to add lazily created series.

  // The series of `operation`, or of the "other" operation for anything not forwardable.
  OperationSeries& SeriesFor(uint8_t operation);

  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<Families> families_;
  // Index 0..8: operations 137, 140..147; index 9: anything else ("unknown").
  std::array<std::unique_ptr<OperationSeries>, 10> operations_;
  std::array<prometheus::Counter*, kRefusalReasonCount> refusals_{};
  prometheus::Gauge* grpc_calls_in_flight_ = nullptr;
  prometheus::Gauge* queued_events_ = nullptr;
  prometheus::Gauge* queued_bytes_ = nullptr;
  prometheus::Gauge* sessions_registered_ = nullptr;
  prometheus::Gauge* session_budget_ = nullptr;
  std::array<prometheus::Counter*, 9> evictions_{};  // Index: reason 1..8; 0 = unknown.
  prometheus::Counter* sessions_lost_ = nullptr;
  prometheus::Counter* sessions_replaced_ = nullptr;
  prometheus::Counter* resends_ = nullptr;
  prometheus::Counter* view_changes_ = nullptr;
  prometheus::Gauge* view_ = nullptr;
  prometheus::Counter* keep_warm_ = nullptr;
  prometheus::Counter* pool_failures_ = nullptr;
};

}  // namespace tb::proxy
