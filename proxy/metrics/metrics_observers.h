// Adapters that feed Metrics (and the log) from the parts that do the work:
//
//   CoalescerMetricsObserver  implements CoalescerObserver (messages, refusals, late results);
//   PoolMetricsObserver       implements pool::PoolObserver (sessions, evictions, resends, views,
//                             round trips) and logs every session event;
//   MeteredSubmitter          wraps the Submitter the front end calls (calls in flight, requests
//                             and events by outcome, end-to-end latency, result statuses);
//   SampleCoalescerOnScrape   samples the queue depth into gauges on every scrape.
//   SampleNativeFrontendOnScrape  samples the native front end's counters on every scrape.
//
//   tb::proxy::Metrics metrics({.version = "0.1.0"});
//   tb::proxy::CoalescerMetricsObserver coalescer_observer(metrics);
//   options.observer = &coalescer_observer;                 // CoalescerOptions
//   tb::proxy::Coalescer coalescer(std::move(options));
//   tb::proxy::SampleCoalescerOnScrape(metrics, coalescer);
//   tb::proxy::PoolMetricsObserver pool_observer(metrics);  // SessionPool::Create(...,
//   &pool_observer) tb::proxy::MeteredSubmitter submitter(coalescer, metrics);
//   tb::proxy::GrpcService service(submitter, {...});
//
// Every object here must outlive whatever reports to it, and Metrics must outlive them all.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "client_core/clock.h"
#include "client_core/u128.h"
#include "pool/pool_observer.h"
#include "proxy/coalescer/coalescer.h"
#include "proxy/coalescer/coalescer_options.h"
#include "proxy/metrics/metrics.h"
#include "proxy/native/native_frontend.h"
#include "proxy/submitter.h"

namespace tb::proxy {

class CoalescerMetricsObserver final : public CoalescerObserver {
 public:
  explicit CoalescerMetricsObserver(Metrics& metrics) : metrics_(metrics) {}

  void OnRefused(uint8_t operation, RefusalReason reason) override;
  void OnMessageBuilt(const MessageStats& stats) override;
  void OnLateResultsDropped(uint8_t operation, uint32_t caller_count) override;
  // Calls are counted by MeteredSubmitter, which also knows their event counts; counting them
  // here too would count each call twice.

 private:
  Metrics& metrics_;
};

// On every scrape, sets tbproxy_queued_events and tbproxy_queued_bytes from coalescer.counts().
// `coalescer` must outlive every later scrape of `metrics`.
void SampleCoalescerOnScrape(Metrics& metrics, const Coalescer& coalescer);

// `native` must outlive every later Metrics::Exposition() (main stops serving /metrics first).
void SampleNativeFrontendOnScrape(Metrics& metrics, const NativeFrontend& native);

class PoolMetricsObserver final : public pool::PoolObserver {
 public:
  explicit PoolMetricsObserver(Metrics& metrics) : metrics_(metrics) {}

  void OnSessionRegistered(u128 client, uint64_t session, uint32_t batch_size_limit) override;
  void OnSessionEvicted(u128 client, EvictionReason reason) override;
  void OnSessionReplaced(u128 old_client, u128 new_client) override;
  void OnSessionRetired(u128 client, absl::Duration silent_for) override;
  void OnSessionStuckKept(u128 client, absl::Duration silent_for) override;
  void OnViewChange(u128 client, uint32_t view) override;
  void OnRequestResent(u128 client, uint32_t attempts) override;
  void OnMessageResubmitted(pool::ResubmissionReason reason, uint32_t attempts) override;
  void OnRoundTrip(uint8_t operation, absl::Duration round_trip) override;
  void OnKeepWarm(u128 client) override;
  void OnPoolFailed(const absl::Status& status) override;

 private:
  // Updates tbproxy_sessions_registered after `client` left (evicted, or replaced when lost).
  void Forget(u128 client);

  Metrics& metrics_;
  absl::Mutex mutex_;
  // Registered sessions by client id: at most kClientsMaxDefault (the cluster's own bound).
  std::vector<u128> registered_ ABSL_GUARDED_BY(mutex_);
};

// A Submitter that measures every call passing through it to `inner`, under the `frontend`
// label of the front end that calls it (gRPC calls also count in tbproxy_grpc_calls_in_flight).
class MeteredSubmitter final : public Submitter {
 public:
  // `inner`, `metrics` and `clock` (which times each call) must outlive this.
  MeteredSubmitter(Submitter& inner, Metrics& metrics, Frontend frontend,
                   Clock* clock = SystemClock());

  void Submit(SubmitRequest request, SubmitOptions options, SubmitCallback callback) override;
  // Counted in tbproxy_requests_total with no events; no duration (it never waited).
  void OnRefusedBeforeSubmit(uint8_t operation, absl::StatusCode code) override;

 private:
  Submitter& inner_;
  Metrics& metrics_;
  const Frontend frontend_;
  Clock* const clock_;
};

}  // namespace tb::proxy
