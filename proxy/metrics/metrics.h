// Prometheus metrics of tbproxy: one registry, typed recording methods, bounded labels.
//
// Every series is named `tbproxy_*` in base units (`_seconds`, `_bytes`, `_total`). Labels only
// ever take values from fixed tables: operation names from the operation table, outcome and
// reason names from enums, result status names from TigerBeetle's status tables. Nothing per
// caller, per client id or per account becomes a label, so the series count stays bounded.
//
//   tb::proxy::Metrics metrics({.version = "0.1.0"});
//   metrics.RecordRequest(Frontend::kGrpc, 146, absl::StatusCode::kOk, /*event_count=*/10);
//   std::string text = metrics.Exposition();  // what GET /metrics serves (metrics_http.h)
//
// The adapters in metrics_observers.h feed it from the coalescer, the pool and the front ends.
//
// All methods are thread-safe and never block for long (prometheus-cpp uses atomics and short
// critical sections), so they may be called from gRPC handlers and the pool's I/O thread alike.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "pool/pool_observer.h"
#include "proxy/coalescer/coalescer_options.h"
#include "proxy/native/native_frontend.h"

namespace prometheus {
class Counter;
class Gauge;
class Histogram;
class Registry;
template <typename T>
class Family;
}  // namespace prometheus

namespace tb::proxy {

// Which front end a call came through: the `frontend` label of the per-call series.
enum class Frontend : uint8_t { kGrpc = 0, kNative = 1 };
inline constexpr size_t kFrontendCount = 2;
const char* FrontendName(Frontend frontend);  // "grpc", "native".

struct MetricsOptions {
  std::string version = "0.0.0";             // tbproxy's own version, for tbproxy_build_info.
  std::string tigerbeetle_release = "0.17";  // The wire release it speaks.
};

class Metrics {
 public:
  explicit Metrics(const MetricsOptions& options);
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // Runs every scrape hook, then renders the registry in the Prometheus text format (0.0.4).
  // Thread-safe; scrapes are serialised.
  std::string Exposition();
  // `hook` runs at the start of every Exposition(), to sample gauges whose owner has the value
  // (queue depth, registered sessions). It must be thread-safe and must not block for long.
  void AddScrapeHook(absl::AnyInvocable<void(Metrics&)> hook);

  // ---- Front end -------------------------------------------------------------------------
  // One finished call: its front end, operation, final status code and number of events.
  // tbproxy_requests_total{frontend,operation,outcome} += 1, tbproxy_events_total{...} += events.
  void RecordRequest(Frontend frontend, uint8_t operation, absl::StatusCode code,
                     uint32_t event_count);
  // From the call's arrival to its results being handed back (tbproxy_request_duration_seconds).
  void RecordRequestDuration(Frontend frontend, uint8_t operation, absl::Duration duration);
  // gRPC calls accepted and not yet finished (tbproxy_grpc_calls_in_flight); delta is ±1.
  void AddGrpcCallsInFlight(int64_t delta);
  // A snapshot of the gRPC service's Stream RPC bound (StreamRpcLimit): sets
  // tbproxy_grpc_streams_open and advances tbproxy_grpc_streams_refused_total to `refused`
  // (snapshots must all come from one service: a counter never goes back).
  void SetGrpcStreams(uint64_t open, uint64_t refused);
  // A snapshot of the gRPC listener's counts (GrpcListenerStats): sets tbproxy_grpc_connections
  // and advances tbproxy_grpc_connections_refused_total and tbproxy_grpc_accept_errors_total
  // (snapshots must all come from one listener).
  void SetGrpcConnections(uint64_t open, uint64_t refused, uint64_t accept_errors);
  // A snapshot of the gRPC service's CallMemoryBudget: sets tbproxy_grpc_call_memory_bytes and
  // advances tbproxy_grpc_call_memory_refused_total (snapshots must all come from one service).
  void SetGrpcCallMemory(uint64_t reserved, uint64_t refused);
  // `count` results of `operation` carried `status` (a CreateAccountStatus/CreateTransferStatus
  // value for 146/147; anything else is counted as "unknown").
  void RecordResultStatus(Frontend frontend, uint8_t operation, uint32_t status, uint64_t count);

  // ---- Native front end --------------------------------------------------------------------
  // A snapshot of NativeFrontend::stats(): sets the tbproxy_native_* gauges and advances its
  // counters to the snapshot's values (a counter never goes back, so snapshots must all come
  // from one front end). The series exist from the first call on, so a proxy without the native
  // port exposes none.
  void SetNativeFrontendStats(const NativeFrontendStats& stats);

  // ---- Coalescer ---------------------------------------------------------------------------
  void RecordMessage(const MessageStats& stats);
  void SetQueued(uint64_t events, uint64_t bytes);
  void RecordRefusal(RefusalReason reason);
  // Results that arrived for callers already told kDeadlineExceeded.
  void RecordLateResultsDropped(uint8_t operation, uint32_t caller_count);

  // ---- Session pool ------------------------------------------------------------------------
  void RecordRoundTrip(uint8_t operation, absl::Duration round_trip);
  void SetSessionsRegistered(uint32_t sessions);
  void SetSessionBudget(uint32_t sessions);  // Configured cluster slots this proxy may use.
  // `reason` is the wire value (1..8, PROTOCOL.md §6.5); others count as "unknown".
  void RecordEviction(uint8_t reason);
  // A new session took the place of one the pool lost (evicted, or given up on a connection or
  // protocol error).
  void RecordSessionReplaced();
  // A request timed out and was re-sent with the same bytes (tbproxy_request_resends_total).
  void RecordResend();
  // A message came back not applied because its session was lost and was sent again on another
  // session (tbproxy_pool_resubmissions_total).
  void RecordResubmission(pool::ResubmissionReason reason);
  // A session stuck without a reply while the cluster answered others was retired
  // (tbproxy_pool_sessions_retired_total{reason="stuck"}).
  void RecordSessionRetired();
  // A stuck session was kept, since session_budget - sessions retired client ids are held
  // (tbproxy_pool_sessions_stuck_kept_total).
  void RecordSessionStuckKept();
  void RecordViewChange(uint32_t view);
  void RecordKeepWarm();
  void RecordPoolFailed();

 private:
  struct OperationSeries;  // Pre-created series of one forwardable operation.
  struct Families;         // The families, to add lazily created series.
  struct NativeSeries;     // The native front end's series, created by the first snapshot.

  // Constructor steps: per-operation families and series, per-reason series, the rest.
  void RegisterOperationSeries();
  void RegisterReasonSeries();
  void RegisterScalarSeries(const MetricsOptions& options);
  // The series of `operation`, or of the "unknown" operation for anything not forwardable.
  OperationSeries& SeriesFor(uint8_t operation);
  std::unique_ptr<NativeSeries> RegisterNativeSeries();
  // The tbproxy_results_total series of these labels (a registry lookup).
  prometheus::Counter& ResultStatusSeries(Frontend frontend, uint8_t operation, uint32_t status);

  absl::Mutex scrape_mutex_;
  std::vector<absl::AnyInvocable<void(Metrics&)>> scrape_hooks_ ABSL_GUARDED_BY(scrape_mutex_);
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<Families> families_;
  // Index 0..8: operations 137, 140..147; index 9: anything else ("unknown").
  std::array<std::unique_ptr<OperationSeries>, 10> operations_;
  // tbproxy_results_total series of the dense creates (146, 147), created on first use so only
  // statuses that happen are exposed. Index: front end, create operation, status + 1 (so
  // "created", 0xFFFFFFFF, is slot 0); statuses past the table take the labelled lookup.
  static constexpr size_t kResultStatusSlots = 128;
  std::array<std::array<std::array<std::atomic<prometheus::Counter*>, kResultStatusSlots>, 2>,
             kFrontendCount>
      result_statuses_{};
  // By RefusalReason (coalescer_options.h), whose last value is kClosed.
  static constexpr size_t kRefusalReasonSlots = static_cast<size_t>(RefusalReason::kClosed) + 1;
  std::array<prometheus::Counter*, kRefusalReasonSlots> refusals_{};
  prometheus::Counter* late_results_dropped_ = nullptr;
  prometheus::Gauge* grpc_calls_in_flight_ = nullptr;
  prometheus::Gauge* grpc_streams_open_ = nullptr;
  prometheus::Counter* grpc_streams_refused_ = nullptr;
  absl::Mutex grpc_streams_mutex_;  // Serialises snapshots: each advances a counter by a difference.
  prometheus::Gauge* grpc_connections_ = nullptr;
  prometheus::Counter* grpc_connections_refused_ = nullptr;
  prometheus::Counter* grpc_accept_errors_ = nullptr;
  absl::Mutex grpc_connections_mutex_;  // Serialises snapshots, as grpc_streams_mutex_.
  prometheus::Gauge* grpc_call_memory_ = nullptr;
  prometheus::Counter* grpc_call_memory_refused_ = nullptr;
  absl::Mutex grpc_call_memory_mutex_;  // Serialises snapshots, as grpc_streams_mutex_.
  prometheus::Gauge* queued_events_ = nullptr;
  prometheus::Gauge* queued_bytes_ = nullptr;
  prometheus::Gauge* sessions_registered_ = nullptr;
  prometheus::Gauge* session_budget_ = nullptr;
  std::array<prometheus::Counter*, 9> evictions_{};  // Index: reason 1..8; 0 = unknown.
  prometheus::Counter* sessions_replaced_ = nullptr;
  prometheus::Counter* resends_ = nullptr;
  std::array<prometheus::Counter*, pool::kResubmissionReasonCount> resubmissions_{};
  prometheus::Counter* sessions_retired_stuck_ = nullptr;
  prometheus::Counter* sessions_stuck_kept_ = nullptr;
  prometheus::Counter* view_changes_ = nullptr;
  prometheus::Gauge* view_ = nullptr;
  prometheus::Counter* keep_warm_ = nullptr;
  prometheus::Counter* pool_failures_ = nullptr;
  absl::Mutex native_mutex_;  // Serialises snapshots: each advances counters by a difference.
  std::unique_ptr<NativeSeries> native_ ABSL_GUARDED_BY(native_mutex_);
};

}  // namespace tb::proxy
