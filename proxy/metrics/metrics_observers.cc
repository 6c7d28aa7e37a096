#include "proxy/metrics/metrics_observers.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "client_core/assert.h"
#include "client_core/constants.h"
#include "client_core/header.h"
#include "client_core/operation.h"
#include "client_core/types.h"
#include "proxy/log/log.h"

namespace tb::proxy {
namespace {

std::string ClientField(u128 client) { return U128ToHex(client); }

// Counts the statuses in a dense create reply (146/147: one CreateResult per event) and records
// them; anything that is not a whole number of results is left to the front end to reject.
// Results mostly share one status, so runs of equal statuses are recorded without a table.
void RecordCreateStatuses(Metrics& metrics, Frontend frontend, uint8_t operation,
                          const std::vector<uint8_t>& results) {
  if (results.size() % sizeof(CreateResult) != 0) return;
  uint32_t run_status = 0;
  uint64_t run_count = 0;
  for (size_t offset = 0; offset < results.size(); offset += sizeof(CreateResult)) {
    CreateResult result;
    std::memcpy(&result, results.data() + offset, sizeof(result));
    if (run_count > 0 && result.status != run_status) {
      metrics.RecordResultStatus(frontend, operation, run_status, run_count);
      run_count = 0;
    }
    run_status = result.status;
    run_count++;
  }
  metrics.RecordResultStatus(frontend, operation, run_status, run_count);
}

bool IsDenseCreate(uint8_t operation) {
  return operation == static_cast<uint8_t>(Operation::kCreateAccounts) ||
         operation == static_cast<uint8_t>(Operation::kCreateTransfers);
}

}  // namespace

// ---- Coalescer ---------------------------------------------------------------------------------

void CoalescerMetricsObserver::OnRefused(uint8_t operation, RefusalReason reason) {
  metrics_.RecordRefusal(reason);
}

void CoalescerMetricsObserver::OnMessageBuilt(const MessageStats& stats) {
  metrics_.RecordMessage(stats);
}

void CoalescerMetricsObserver::OnLateResultsDropped(uint8_t operation, uint32_t caller_count) {
  metrics_.RecordLateResultsDropped(operation, caller_count);
}

void SampleCoalescerOnScrape(Metrics& metrics, const Coalescer& coalescer) {
  metrics.AddScrapeHook([&coalescer](Metrics& metrics) {
    const Coalescer::Counts counts = coalescer.counts();
    metrics.SetQueued(counts.queued_events, counts.queued_bytes);
  });
}

void SampleNativeFrontendOnScrape(Metrics& metrics, const NativeFrontend& native) {
  metrics.AddScrapeHook(
      [&native](Metrics& metrics) { metrics.SetNativeFrontendStats(native.stats()); });
}

// ---- Pool ------------------------------------------------------------------------------------

void PoolMetricsObserver::OnSessionRegistered(u128 client, uint64_t session,
                                              uint32_t batch_size_limit) {
  {
    absl::MutexLock lock(&mutex_);
    const bool known =
        std::find(registered_.begin(), registered_.end(), client) != registered_.end();
    // The cluster cannot hold more than clients_max sessions; a longer list is a pool bug we
    // refuse to turn into unbounded memory.
    if (!known && registered_.size() < kClientsMaxDefault) registered_.push_back(client);
    metrics_.SetSessionsRegistered(static_cast<uint32_t>(registered_.size()));
  }
  Log(LogLevel::kInfo, "session_registered",
      {{"client", ClientField(client)},
       {"session", absl::StrCat(session)},
       {"batch_size_limit", absl::StrCat(batch_size_limit)}});
}

void PoolMetricsObserver::Forget(u128 client) {
  absl::MutexLock lock(&mutex_);
  registered_.erase(std::remove(registered_.begin(), registered_.end(), client), registered_.end());
  metrics_.SetSessionsRegistered(static_cast<uint32_t>(registered_.size()));
}

void PoolMetricsObserver::OnSessionEvicted(u128 client, EvictionReason reason) {
  Forget(client);
  metrics_.RecordEviction(static_cast<uint8_t>(reason));
  Log(LogLevel::kWarning, "session_evicted",
      {{"client", ClientField(client)}, {"reason", EvictionReasonName(reason)}});
}

void PoolMetricsObserver::OnSessionReplaced(u128 old_client, u128 new_client) {
  Forget(old_client);
  metrics_.RecordSessionReplaced();
  Log(LogLevel::kInfo, "session_replaced",
      {{"old_client", ClientField(old_client)}, {"new_client", ClientField(new_client)}});
}

void PoolMetricsObserver::OnSessionRetired(u128 client, absl::Duration silent_for) {
  Forget(client);
  metrics_.RecordSessionRetired();
  Log(LogLevel::kWarning, "session_retired",
      {{"client", ClientField(client)},
       {"reason", "stuck"},
       {"silent_for", absl::FormatDuration(silent_for)}});
}

void PoolMetricsObserver::OnSessionStuckKept(u128 client, absl::Duration silent_for) {
  metrics_.RecordSessionStuckKept();
  Log(LogLevel::kWarning, "session_stuck_kept",
      {{"client", ClientField(client)},
       {"silent_for", absl::FormatDuration(silent_for)},
       {"detail",
        "no reply while the cluster answers other sessions, and no room to retire it: raise "
        "--session-budget above --sessions"}});
}

void PoolMetricsObserver::OnViewChange(u128 client, uint32_t view) {
  metrics_.RecordViewChange(view);
  Log(LogLevel::kInfo, "view_change",
      {{"client", ClientField(client)}, {"view", absl::StrCat(view)}});
}

void PoolMetricsObserver::OnRequestResent(u128 client, uint32_t attempts) {
  metrics_.RecordResend();
  Log(LogLevel::kDebug, "request_resent",
      {{"client", ClientField(client)}, {"attempts", absl::StrCat(attempts)}});
}

void PoolMetricsObserver::OnMessageResubmitted(pool::ResubmissionReason reason,
                                               uint32_t attempts) {
  metrics_.RecordResubmission(reason);
  Log(LogLevel::kInfo, "message_resubmitted",
      {{"reason", pool::ResubmissionReasonName(reason)}, {"attempts", absl::StrCat(attempts)}});
}

void PoolMetricsObserver::OnRoundTrip(uint8_t operation, absl::Duration round_trip) {
  metrics_.RecordRoundTrip(operation, round_trip);
}

void PoolMetricsObserver::OnKeepWarm(u128 client) { metrics_.RecordKeepWarm(); }

void PoolMetricsObserver::OnPoolFailed(const absl::Status& status) {
  {
    absl::MutexLock lock(&mutex_);
    registered_.clear();
    metrics_.SetSessionsRegistered(0);
  }
  metrics_.RecordPoolFailed();
  Log(LogLevel::kError, "pool_failed", {{"status", status.ToString()}});
}

// ---- Front end -------------------------------------------------------------------------------

MeteredSubmitter::MeteredSubmitter(Submitter& inner, Metrics& metrics, Frontend frontend,
                                   Clock* clock)
    : inner_(inner), metrics_(metrics), frontend_(frontend), clock_(clock) {
  TB_ASSERT(clock_ != nullptr);
}

void MeteredSubmitter::Submit(SubmitRequest request, SubmitOptions options,
                              SubmitCallback callback) {
  const uint8_t operation = request.operation;
  const OperationInfo* info = FindOperation(operation);
  // A size that is not a whole number of events is the inner submitter's to refuse; the count
  // is only for the metric.
  const uint32_t event_count = info != nullptr && info->event_size > 0
                                   ? static_cast<uint32_t>(request.events.size() / info->event_size)
                                   : 0;
  const uint64_t start_ns = clock_->NowNs();
  const bool grpc = frontend_ == Frontend::kGrpc;
  if (grpc) metrics_.AddGrpcCallsInFlight(+1);
  inner_.Submit(std::move(request), options,
                [this, grpc, operation, event_count, start_ns,
                 callback = std::move(callback)](absl::StatusOr<SubmitResult> result) mutable {
                  metrics_.RecordRequest(frontend_, operation, result.status().code(), event_count);
                  metrics_.RecordRequestDuration(
                      frontend_, operation,
                      absl::Nanoseconds(static_cast<int64_t>(clock_->NowNs() - start_ns)));
                  if (result.ok() && IsDenseCreate(operation)) {
                    RecordCreateStatuses(metrics_, frontend_, operation, result->results);
                  }
                  if (grpc) metrics_.AddGrpcCallsInFlight(-1);
                  std::move(callback)(std::move(result));
                });
}

void MeteredSubmitter::OnRefusedBeforeSubmit(uint8_t operation, absl::StatusCode code) {
  metrics_.RecordRequest(frontend_, operation, code, /*event_count=*/0);
  inner_.OnRefusedBeforeSubmit(operation, code);
}

}  // namespace tb::proxy
