#include "proxy/coalescer/coalescer_options.h"

namespace tb::proxy {

const char* RefusalReasonName(RefusalReason reason) {
  switch (reason) {
    case RefusalReason::kInvalidInput:
      return "invalid_input";
    case RefusalReason::kQueuedEvents:
      return "queued_events_max";
    case RefusalReason::kQueuedBytes:
      return "queued_bytes_max";
    case RefusalReason::kCallers:
      return "callers_max";
    case RefusalReason::kClosed:
      return "closed";
  }
  return "unknown";
}

absl::Status ValidateCoalescerOptions(const CoalescerOptions& options) {
  if (options.queued_events_max == 0 || options.queued_events_max > kQueuedEventsMaxCeiling) {
    return absl::InvalidArgumentError("queued_events_max out of range");
  }
  if (options.queued_bytes_max == 0 || options.queued_bytes_max > kQueuedBytesMaxCeiling) {
    return absl::InvalidArgumentError("queued_bytes_max out of range");
  }
  if (options.callers_max == 0 || options.callers_max > kCallersMaxCeiling) {
    return absl::InvalidArgumentError("callers_max out of range");
  }
  return absl::OkStatus();
}

}  // namespace tb::proxy
