#include "proxy/metrics/metrics.h"

#include <atomic>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "client_core/assert.h"
#include "client_core/header.h"
#include "client_core/operation.h"
#include "client_core/types.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "prometheus/text_serializer.h"

namespace tb::proxy {
namespace {

using prometheus::Counter;
using prometheus::Family;
using prometheus::Gauge;
using prometheus::Histogram;

// The operations an application may send (client_core IsForwardableOperation), in label order.
constexpr std::array<uint8_t, 9> kForwardableOperations = {137, 140, 141, 142, 143,
                                                           144, 145, 146, 147};
constexpr size_t kUnknownOperationIndex = kForwardableOperations.size();

// Seconds: from half a millisecond (a local round trip) to ten seconds (a stuck cluster).
const std::vector<double>& LatencyBuckets() {
  static const auto* buckets = new std::vector<double>{
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
  return *buckets;
}

// Events per message: up to 8189 events of the smallest batches at the default limit.
const std::vector<double>& EventBuckets() {
  static const auto* buckets =
      new std::vector<double>{1, 2, 5, 10, 50, 100, 500, 1000, 2000, 4000, 6000, 8189};
  return *buckets;
}

const std::vector<double>& BatchBuckets() {
  static const auto* buckets =
      new std::vector<double>{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192};
  return *buckets;
}

const std::vector<double>& FillBuckets() {
  static const auto* buckets =
      new std::vector<double>{0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1};
  return *buckets;
}

// Advances a counter fed from a snapshot to the snapshot's value; it never goes back.
void AdvanceTo(Counter& counter, uint64_t value) {
  const double delta = static_cast<double>(value) - counter.Value();
  if (delta > 0) counter.Increment(delta);
}

// Eviction reasons 1..8 by wire value (PROTOCOL.md §6.5); slot 0 stands for anything invalid.
std::string EvictionLabel(size_t index) {
  if (index == 0 || index > kEvictionReasonMax) return "unknown";
  return EvictionReasonName(static_cast<EvictionReason>(index));
}

std::string OutcomeName(absl::StatusCode code) {
  return absl::AsciiStrToLower(absl::StatusCodeToString(code));
}

// "unknown" for anything outside TigerBeetle's status tables, so the label stays bounded.
std::string StatusName(uint8_t operation, uint32_t status) {
  const char* name = "";
  if (operation == static_cast<uint8_t>(Operation::kCreateAccounts)) {
    name = CreateAccountStatusName(status);
  } else if (operation == static_cast<uint8_t>(Operation::kCreateTransfers)) {
    name = CreateTransferStatusName(status);
  }
  return name[0] == '\0' ? "unknown" : name;
}

}  // namespace

struct Metrics::Families {
  Family<Counter>& requests;
  Family<Counter>& events;
  Family<Counter>& results;
  Family<Histogram>& request_duration;
  Family<Histogram>& message_events;
  Family<Histogram>& message_batches;
  Family<Histogram>& message_fill;
  Family<Histogram>& queue_wait;
  Family<Histogram>& round_trip;
};

// Series looked up on every request are created once, so the hot path does no label hashing.
struct Metrics::OperationSeries {
  std::string name;
  // By front end, then absl::StatusCode 0..16, created on first use so only outcomes that
  // happen are exposed.
  std::array<std::array<std::atomic<Counter*>, 17>, kFrontendCount> requests{};
  std::array<std::array<std::atomic<Counter*>, 17>, kFrontendCount> events{};
  std::array<Histogram*, kFrontendCount> request_duration{};
  Histogram* message_events = nullptr;
  Histogram* message_batches = nullptr;
  Histogram* message_fill = nullptr;
  Histogram* queue_wait = nullptr;
  Histogram* round_trip = nullptr;
};

struct Metrics::NativeSeries {
  Gauge* connections = nullptr;
  Gauge* reply_bytes_queued = nullptr;
  Gauge* sessions = nullptr;
  Counter* connections_refused = nullptr;
  Counter* accept_errors = nullptr;
  Counter* slow_readers_closed = nullptr;
  Counter* protocol_closes = nullptr;
  Counter* requests = nullptr;
  Counter* batches = nullptr;
  Counter* replies = nullptr;
  Counter* duplicates = nullptr;
  Counter* drops = nullptr;
  std::array<Counter*, kEvictionReasonMax + 1> evictions{};  // Index: reason 1..8; 0 unused.
};

const char* FrontendName(Frontend frontend) {
  return frontend == Frontend::kNative ? "native" : "grpc";
}

Metrics::Metrics(const MetricsOptions& options)
    : registry_(std::make_shared<prometheus::Registry>()) {
  RegisterOperationSeries();
  RegisterReasonSeries();
  RegisterScalarSeries(options);
}

void Metrics::RegisterOperationSeries() {
  prometheus::Registry& registry = *registry_;
  families_ = std::make_unique<Families>(Families{
      .requests =
          prometheus::BuildCounter()
              .Name("tbproxy_requests_total")
              .Help("Calls finished, by front end, operation and outcome (gRPC status code).")
              .Register(registry),
      .events = prometheus::BuildCounter()
                    .Name("tbproxy_events_total")
                    .Help("Events carried by finished calls, by front end, operation and outcome.")
                    .Register(registry),
      .results =
          prometheus::BuildCounter()
              .Name("tbproxy_results_total")
              .Help(
                  "Per-event results returned by the cluster, by front end, operation and status.")
              .Register(registry),
      .request_duration = prometheus::BuildHistogram()
                              .Name("tbproxy_request_duration_seconds")
                              .Help("End-to-end latency of a call, from arrival to its results.")
                              .Register(registry),
      .message_events = prometheus::BuildHistogram()
                            .Name("tbproxy_message_events")
                            .Help("Events per message sent to the cluster.")
                            .Register(registry),
      .message_batches = prometheus::BuildHistogram()
                             .Name("tbproxy_message_batches")
                             .Help("Batches (coalesced calls) per message sent to the cluster.")
                             .Register(registry),
      .message_fill = prometheus::BuildHistogram()
                          .Name("tbproxy_message_fill_ratio")
                          .Help("Message body size as a fraction of the session's "
                                "batch_size_limit.")
                          .Register(registry),
      .queue_wait = prometheus::BuildHistogram()
                        .Name("tbproxy_queue_wait_seconds")
                        .Help("Time a message's oldest batch waited before a session took it.")
                        .Register(registry),
      .round_trip = prometheus::BuildHistogram()
                        .Name("tbproxy_cluster_round_trip_seconds")
                        .Help("Time from a message's first transmission to the cluster's reply.")
                        .Register(registry),
  });

  for (size_t index = 0; index < operations_.size(); index++) {
    auto series = std::make_unique<OperationSeries>();
    if (index < kUnknownOperationIndex) {
      const OperationInfo* info = FindOperation(kForwardableOperations[index]);
      TB_ASSERT(info != nullptr);
      series->name = info->name;
    } else {
      series->name = "unknown";
    }
    const prometheus::Labels labels = {{"operation", series->name}};
    for (size_t frontend = 0; frontend < kFrontendCount; frontend++) {
      series->request_duration[frontend] = &families_->request_duration.Add(
          {{"frontend", FrontendName(static_cast<Frontend>(frontend))},
           {"operation", series->name}},
          LatencyBuckets());
    }
    series->message_events = &families_->message_events.Add(labels, EventBuckets());
    series->message_batches = &families_->message_batches.Add(labels, BatchBuckets());
    series->message_fill = &families_->message_fill.Add(labels, FillBuckets());
    series->queue_wait = &families_->queue_wait.Add(labels, LatencyBuckets());
    series->round_trip = &families_->round_trip.Add(labels, LatencyBuckets());
    operations_[index] = std::move(series);
  }
}

void Metrics::RegisterReasonSeries() {
  prometheus::Registry& registry = *registry_;
  auto& refusals = prometheus::BuildCounter()
                       .Name("tbproxy_refusals_total")
                       .Help("Calls refused before they were queued, by reason.")
                       .Register(registry);
  for (size_t index = 0; index < refusals_.size(); index++) {
    const auto reason = static_cast<RefusalReason>(index);
    refusals_[index] = &refusals.Add({{"reason", RefusalReasonName(reason)}});
  }

  auto& evictions = prometheus::BuildCounter()
                        .Name("tbproxy_session_evictions_total")
                        .Help("Sessions evicted by the cluster, by eviction reason.")
                        .Register(registry);
  static_assert(kEvictionReasonMax + 1 == std::tuple_size_v<decltype(evictions_)>);
  for (size_t index = 0; index < evictions_.size(); index++) {
    evictions_[index] = &evictions.Add({{"reason", EvictionLabel(index)}});
  }

  auto& resubmissions =
      prometheus::BuildCounter()
          .Name("tbproxy_pool_resubmissions_total")
          .Help("Messages sent again on another session after session churn sent them back not "
                "applied, by reason.")
          .Register(registry);
  for (size_t index = 0; index < resubmissions_.size(); index++) {
    const auto reason = static_cast<pool::ResubmissionReason>(index);
    resubmissions_[index] = &resubmissions.Add({{"reason", pool::ResubmissionReasonName(reason)}});
  }
  // A label from the start, so other reasons for giving up a session can join the same series.
  sessions_retired_stuck_ =
      &prometheus::BuildCounter()
           .Name("tbproxy_pool_sessions_retired_total")
           .Help("Sessions the pool gave up on and replaced without an eviction, by reason.")
           .Register(registry)
           .Add({{"reason", "stuck"}});
}

void Metrics::RegisterScalarSeries(const MetricsOptions& options) {
  prometheus::Registry& registry = *registry_;
  auto gauge = [&registry](const char* name, const char* help) {
    return &prometheus::BuildGauge().Name(name).Help(help).Register(registry).Add({});
  };
  auto counter = [&registry](const char* name, const char* help) {
    return &prometheus::BuildCounter().Name(name).Help(help).Register(registry).Add({});
  };
  grpc_calls_in_flight_ =
      gauge("tbproxy_grpc_calls_in_flight", "gRPC calls accepted and not yet finished.");
  grpc_streams_open_ = gauge("tbproxy_grpc_streams_open",
                             "Stream RPCs open (at most --stream-rpcs-max).");
  grpc_streams_refused_ = counter("tbproxy_grpc_streams_refused_total",
                                  "Stream RPCs refused with --stream-rpcs-max open.");
  grpc_connections_ = gauge("tbproxy_grpc_connections",
                            "gRPC client connections open (at most --grpc-connections-max).");
  grpc_connections_refused_ =
      counter("tbproxy_grpc_connections_refused_total",
              "gRPC connections closed at accept: --grpc-connections-max were open.");
  grpc_accept_errors_ = counter("tbproxy_grpc_accept_errors_total",
                                "Failed accepts on the gRPC port (out of descriptors, say).");
  grpc_call_memory_ =
      gauge("tbproxy_grpc_call_memory_bytes",
            "Bytes reserved by gRPC calls not yet done (at most --grpc-call-memory-max).");
  grpc_call_memory_refused_ =
      counter("tbproxy_grpc_call_memory_refused_total",
              "gRPC calls refused because --grpc-call-memory-max was reserved.");
  queued_events_ = gauge("tbproxy_queued_events", "Events waiting in the coalescer.");
  queued_bytes_ = gauge("tbproxy_queued_bytes", "Bytes of events waiting in the coalescer.");
  sessions_registered_ =
      gauge("tbproxy_sessions_registered", "Cluster sessions registered and serving.");
  session_budget_ = gauge("tbproxy_session_budget",
                          "Cluster session slots this proxy may occupy (of clients_max 64).");
  view_ = gauge("tbproxy_cluster_view", "Highest cluster view seen by any session.");
  sessions_replaced_ =
      counter("tbproxy_session_replacements_total",
              "New sessions started to replace lost ones (evicted, or failed connection).");
  resends_ = counter("tbproxy_request_resends_total",
                     "Requests that timed out and were re-sent with the same bytes.");
  view_changes_ = counter("tbproxy_view_changes_total", "Higher cluster views seen by a session.");
  sessions_stuck_kept_ = counter(
      "tbproxy_pool_sessions_stuck_kept_total",
      "Stuck sessions kept waiting: no room to retire them (session-budget - sessions used up).");
  keep_warm_ = counter("tbproxy_keep_warm_requests_total",
                       "Requests sent by idle sessions to stay recently used.");
  late_results_dropped_ =
      counter("tbproxy_late_results_dropped_total",
              "Results that arrived after their caller was told the deadline passed.");
  pool_failures_ =
      counter("tbproxy_pool_failures_total", "Times the session pool stopped for good.");

  prometheus::BuildGauge()
      .Name("tbproxy_build_info")
      .Help("Always 1; labels say which tbproxy and TigerBeetle wire release run.")
      .Register(registry)
      .Add({{"version", options.version}, {"tigerbeetle_release", options.tigerbeetle_release}})
      .Set(1);
}

std::unique_ptr<Metrics::NativeSeries> Metrics::RegisterNativeSeries() {
  prometheus::Registry& registry = *registry_;
  auto gauge = [&registry](const char* name, const char* help) {
    return &prometheus::BuildGauge().Name(name).Help(help).Register(registry).Add({});
  };
  auto counter = [&registry](const char* name, const char* help) {
    return &prometheus::BuildCounter().Name(name).Help(help).Register(registry).Add({});
  };
  auto series = std::make_unique<NativeSeries>();
  series->connections = gauge("tbproxy_native_connections", "Native port connections open.");
  series->reply_bytes_queued =
      gauge("tbproxy_native_reply_bytes_queued",
            "Native replies queued and not yet written, every connection together (at most "
            "--native-write-queue-bytes-total-max).");
  series->sessions = gauge("tbproxy_native_sessions",
                           "Virtual sessions of native clients (at most --native-sessions-max).");
  series->connections_refused =
      counter("tbproxy_native_connections_refused_total",
              "Native connections closed at accept: --native-connections-max were open.");
  series->accept_errors = counter("tbproxy_native_accept_errors_total",
                                  "Failed accepts on the native port (out of descriptors, say).");
  series->slow_readers_closed =
      counter("tbproxy_native_slow_readers_closed_total",
              "Native connections closed with --native-write-queue-bytes-max unread.");
  series->protocol_closes = counter("tbproxy_native_protocol_closes_total",
                                    "Native connections closed for a framing or protocol error.");
  series->requests = counter("tbproxy_native_requests_total",
                             "Request messages received on the native port, registers included.");
  series->batches = counter("tbproxy_native_batches_total",
                            "Batches of native requests handed to the coalescer.");
  series->replies = counter("tbproxy_native_replies_total",
                            "Replies sent to native clients, duplicates included.");
  series->duplicates = counter("tbproxy_native_duplicate_requests_total",
                               "Native requests answered with the reply stored for them.");
  series->drops = counter("tbproxy_native_drops_total",
                          "Native messages dropped unanswered (the client retries).");
  auto& evictions = prometheus::BuildCounter()
                        .Name("tbproxy_native_session_evictions_total")
                        .Help("Evictions sent to native clients, by eviction reason.")
                        .Register(registry);
  for (size_t index = 1; index < series->evictions.size(); index++) {
    series->evictions[index] = &evictions.Add({{"reason", EvictionLabel(index)}});
  }
  return series;
}

Metrics::~Metrics() = default;

std::string Metrics::Exposition() {
  absl::MutexLock lock(&scrape_mutex_);
  for (auto& hook : scrape_hooks_) hook(*this);
  return prometheus::TextSerializer().Serialize(registry_->Collect());
}

void Metrics::AddScrapeHook(absl::AnyInvocable<void(Metrics&)> hook) {
  TB_ASSERT(hook != nullptr);
  absl::MutexLock lock(&scrape_mutex_);
  scrape_hooks_.push_back(std::move(hook));
}

Metrics::OperationSeries& Metrics::SeriesFor(uint8_t operation) {
  for (size_t index = 0; index < kForwardableOperations.size(); index++) {
    if (kForwardableOperations[index] == operation) return *operations_[index];
  }
  return *operations_[kUnknownOperationIndex];
}

void Metrics::RecordRequest(Frontend frontend, uint8_t operation, absl::StatusCode code,
                            uint32_t event_count) {
  OperationSeries& series = SeriesFor(operation);
  const auto front = static_cast<size_t>(frontend);
  auto index = static_cast<size_t>(code);
  if (index >= series.requests[front].size()) {
    index = static_cast<size_t>(absl::StatusCode::kUnknown);
  }
  // Family::Add returns the existing series for equal labels, so a race only repeats a lookup.
  Counter* requests = series.requests[front][index].load(std::memory_order_acquire);
  Counter* events = series.events[front][index].load(std::memory_order_acquire);
  if (requests == nullptr || events == nullptr) {
    const std::string outcome = OutcomeName(static_cast<absl::StatusCode>(index));
    const prometheus::Labels labels = {
        {"frontend", FrontendName(frontend)}, {"operation", series.name}, {"outcome", outcome}};
    requests = &families_->requests.Add(labels);
    events = &families_->events.Add(labels);
    series.requests[front][index].store(requests, std::memory_order_release);
    series.events[front][index].store(events, std::memory_order_release);
  }
  requests->Increment();
  events->Increment(event_count);
}

void Metrics::RecordRequestDuration(Frontend frontend, uint8_t operation, absl::Duration duration) {
  SeriesFor(operation).request_duration[static_cast<size_t>(frontend)]->Observe(
      absl::ToDoubleSeconds(duration));
}

void Metrics::SetGrpcStreams(uint64_t open, uint64_t refused) {
  absl::MutexLock lock(&grpc_streams_mutex_);
  grpc_streams_open_->Set(static_cast<double>(open));
  AdvanceTo(*grpc_streams_refused_, refused);
}

void Metrics::SetGrpcConnections(uint64_t open, uint64_t refused, uint64_t accept_errors) {
  absl::MutexLock lock(&grpc_connections_mutex_);
  grpc_connections_->Set(static_cast<double>(open));
  AdvanceTo(*grpc_connections_refused_, refused);
  AdvanceTo(*grpc_accept_errors_, accept_errors);
}

void Metrics::SetGrpcCallMemory(uint64_t reserved, uint64_t refused) {
  absl::MutexLock lock(&grpc_call_memory_mutex_);
  grpc_call_memory_->Set(static_cast<double>(reserved));
  AdvanceTo(*grpc_call_memory_refused_, refused);
}

void Metrics::AddGrpcCallsInFlight(int64_t delta) {
  grpc_calls_in_flight_->Increment(static_cast<double>(delta));
}

prometheus::Counter& Metrics::ResultStatusSeries(Frontend frontend, uint8_t operation,
                                                 uint32_t status) {
  return families_->results.Add({{"frontend", FrontendName(frontend)},
                                 {"operation", SeriesFor(operation).name},
                                 {"status", StatusName(operation, status)}});
}

void Metrics::RecordResultStatus(Frontend frontend, uint8_t operation, uint32_t status,
                                 uint64_t count) {
  if (count == 0) return;
  const auto increment = static_cast<double>(count);
  const uint32_t slot = status + 1;  // Wraps "created" (0xFFFFFFFF) to slot 0.
  const bool create_accounts = operation == static_cast<uint8_t>(Operation::kCreateAccounts);
  if (slot >= kResultStatusSlots ||
      (!create_accounts && operation != static_cast<uint8_t>(Operation::kCreateTransfers))) {
    ResultStatusSeries(frontend, operation, status).Increment(increment);
    return;
  }
  // Family::Add returns the existing series for equal labels, so a race only repeats a lookup.
  std::atomic<Counter*>& cached =
      result_statuses_[static_cast<size_t>(frontend)][create_accounts ? 0 : 1][slot];
  Counter* counter = cached.load(std::memory_order_acquire);
  if (counter == nullptr) {
    counter = &ResultStatusSeries(frontend, operation, status);
    cached.store(counter, std::memory_order_release);
  }
  counter->Increment(increment);
}

void Metrics::SetNativeFrontendStats(const NativeFrontendStats& stats) {
  absl::MutexLock lock(&native_mutex_);
  if (native_ == nullptr) native_ = RegisterNativeSeries();
  NativeSeries& series = *native_;
  series.connections->Set(static_cast<double>(stats.connections_open));
  series.reply_bytes_queued->Set(static_cast<double>(stats.reply_bytes_queued));
  series.sessions->Set(static_cast<double>(stats.sessions));
  AdvanceTo(*series.connections_refused, stats.connections_refused);
  AdvanceTo(*series.accept_errors, stats.accept_errors);
  AdvanceTo(*series.slow_readers_closed, stats.slow_readers_closed);
  AdvanceTo(*series.protocol_closes, stats.closes);
  AdvanceTo(*series.requests, stats.requests);
  AdvanceTo(*series.batches, stats.batches);
  AdvanceTo(*series.replies, stats.replies);
  AdvanceTo(*series.duplicates, stats.duplicates);
  AdvanceTo(*series.drops, stats.drops);
  for (size_t index = 1; index < series.evictions.size(); index++) {
    AdvanceTo(*series.evictions[index], stats.evictions_by_reason[index]);
  }
}

void Metrics::RecordMessage(const MessageStats& stats) {
  OperationSeries& series = SeriesFor(stats.operation);
  series.message_events->Observe(stats.event_count);
  series.message_batches->Observe(stats.batch_count);
  series.message_fill->Observe(stats.limit_fill);
  series.queue_wait->Observe(absl::ToDoubleSeconds(stats.queue_wait));
}

void Metrics::SetQueued(uint64_t events, uint64_t bytes) {
  queued_events_->Set(static_cast<double>(events));
  queued_bytes_->Set(static_cast<double>(bytes));
}

void Metrics::RecordRefusal(RefusalReason reason) {
  const auto index = static_cast<size_t>(reason);
  TB_ASSERT(index < refusals_.size());
  refusals_[index]->Increment();
}

void Metrics::RecordLateResultsDropped(uint8_t operation, uint32_t caller_count) {
  late_results_dropped_->Increment(caller_count);
}

void Metrics::RecordRoundTrip(uint8_t operation, absl::Duration round_trip) {
  SeriesFor(operation).round_trip->Observe(absl::ToDoubleSeconds(round_trip));
}

void Metrics::SetSessionsRegistered(uint32_t sessions) { sessions_registered_->Set(sessions); }

void Metrics::SetSessionBudget(uint32_t sessions) { session_budget_->Set(sessions); }

void Metrics::RecordEviction(uint8_t reason) {
  evictions_[reason <= kEvictionReasonMax ? reason : 0]->Increment();
}

void Metrics::RecordSessionReplaced() { sessions_replaced_->Increment(); }

void Metrics::RecordResend() { resends_->Increment(); }

void Metrics::RecordSessionRetired() { sessions_retired_stuck_->Increment(); }

void Metrics::RecordSessionStuckKept() { sessions_stuck_kept_->Increment(); }

void Metrics::RecordResubmission(pool::ResubmissionReason reason) {
  const auto index = static_cast<size_t>(reason);
  TB_ASSERT(index < resubmissions_.size());
  resubmissions_[index]->Increment();
}

void Metrics::RecordViewChange(uint32_t view) {
  view_changes_->Increment();
  if (view > view_->Value()) view_->Set(view);
}

void Metrics::RecordKeepWarm() { keep_warm_->Increment(); }

void Metrics::RecordPoolFailed() { pool_failures_->Increment(); }

}  // namespace tb::proxy
