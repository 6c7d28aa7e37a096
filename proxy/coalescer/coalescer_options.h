// Settings and metric hooks of the coalescer (proxy/coalescer/coalescer.h).
//
//   tb::proxy::CoalescerOptions options{.queued_events_max = 1 << 20};
//   TB_RETURN_IF_ERROR(tb::proxy::ValidateCoalescerOptions(options));
//   tb::proxy::Coalescer coalescer(options, /*wake=*/[&pool] { pool.Wake(); });
#pragma once

#include <cstdint>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "client_core/clock.h"

namespace tb::proxy {

// Why a call was refused before it was queued.
enum class RefusalReason {
  kInvalidInput,    // Unknown operation, bad size, too many events, bad query limit.
  kQueuedEvents,    // queued_events_max reached.
  kQueuedBytes,     // queued_bytes_max reached.
  kCallers,         // callers_max reached.
  kClosed,          // Close() was called.
};

const char* RefusalReasonName(RefusalReason reason);

// Facts about one message handed to a session.
struct MessageStats {
  uint8_t operation = 0;
  uint32_t event_count = 0;
  uint32_t batch_count = 0;
  uint32_t body_size = 0;       // Bytes.
  double limit_fill = 0;        // body_size / batch_size_limit of the taking session.
  absl::Duration queue_wait;    // From the oldest batch's Submit to TakeMessage.
};

// Metric hooks. Every method may be called from any thread, possibly with the coalescer's
// internal lock held: implementations must be cheap, thread-safe and must not call back into
// the coalescer.
class CoalescerObserver {
 public:
  virtual ~CoalescerObserver() = default;
  virtual void OnBatchQueued(uint8_t /*operation*/, uint32_t /*event_count*/) {}
  virtual void OnRefused(uint8_t /*operation*/, RefusalReason /*reason*/) {}
  virtual void OnMessageBuilt(const MessageStats& /*stats*/) {}
  // `code` is the status code the caller received (kOk for results).
  virtual void OnCallerCompleted(uint8_t /*operation*/, absl::StatusCode /*code*/,
                                 absl::Duration /*latency*/) {}
  // Results that arrived for a caller who was already told kDeadlineExceeded (outcome unknown).
  virtual void OnLateResultsDropped(uint8_t /*operation*/, uint32_t /*caller_count*/) {}
};

struct CoalescerOptions {
  // Bounds on what waits in the queue (not yet taken by a session).
  uint64_t queued_events_max = 1'000'000;
  uint64_t queued_bytes_max = 256ull << 20;
  // Calls known to the coalescer: queued plus in flight, until their message is answered.
  uint32_t callers_max = 100'000;
  // The time source for deadlines, in nanoseconds since the Unix epoch as absl::Time counts
  // (tests pass a FakeClock). Not owned, must outlive the coalescer. Null means absl::Now.
  Clock* clock = nullptr;
  // Metric hooks, not owned, may be null. Must outlive the coalescer.
  CoalescerObserver* observer = nullptr;
};

inline constexpr uint64_t kQueuedEventsMaxCeiling = 1ull << 32;
inline constexpr uint64_t kQueuedBytesMaxCeiling = 16ull << 30;
inline constexpr uint32_t kCallersMaxCeiling = 10'000'000;

// kInvalidArgument naming the first field that is out of range.
absl::Status ValidateCoalescerOptions(const CoalescerOptions& options);

}  // namespace tb::proxy
