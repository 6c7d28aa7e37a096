// The bounds of the coalescer: queued events, queued bytes and known callers. Not thread-safe:
// the coalescer holds its lock around every call.
//
//   absl::Status admitted = admission.TryAdmit(events, bytes);   // kResourceExhausted if full
//   admission.ReleaseQueued(events, bytes);   // when the batch leaves the queue
//   admission.ReleaseCaller();                // when the caller is forgotten
#pragma once

#include <cstdint>
#include <optional>

#include "absl/status/status.h"
#include "proxy/coalescer/coalescer_options.h"

namespace tb::proxy {

struct AdmissionLimits {
  uint64_t queued_events_max = 0;
  uint64_t queued_bytes_max = 0;
  uint32_t callers_max = 0;
};

class Admission {
 public:
  explicit Admission(AdmissionLimits limits) : limits_(limits) {}

  // Which bound a call of `event_count` events and `byte_count` bytes would break, if any.
  std::optional<RefusalReason> Check(uint64_t event_count, uint64_t byte_count) const;
  // Check() and, if nothing breaks, counts the call as one queued caller.
  absl::Status TryAdmit(uint64_t event_count, uint64_t byte_count);
  // The batch left the queue (taken into a message, expired, failed); the caller stays known.
  void ReleaseQueued(uint64_t event_count, uint64_t byte_count);
  // The caller is forgotten (its message was answered, or it left the queue).
  void ReleaseCaller();

  uint64_t queued_events() const { return queued_events_; }
  uint64_t queued_bytes() const { return queued_bytes_; }
  uint32_t callers() const { return callers_; }

 private:
  AdmissionLimits limits_;
  uint64_t queued_events_ = 0;
  uint64_t queued_bytes_ = 0;
  uint32_t callers_ = 0;
};

}  // namespace tb::proxy
