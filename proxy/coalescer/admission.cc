#include "proxy/coalescer/admission.h"

#include "absl/strings/str_cat.h"
#include "client_core/assert.h"

namespace tb::proxy {

std::optional<RefusalReason> Admission::Check(uint64_t event_count, uint64_t byte_count) const {
  if (callers_ + 1ull > limits_.callers_max) return RefusalReason::kCallers;
  if (queued_events_ + event_count > limits_.queued_events_max) {
    return RefusalReason::kQueuedEvents;
  }
  if (queued_bytes_ + byte_count > limits_.queued_bytes_max) return RefusalReason::kQueuedBytes;
  return std::nullopt;
}

absl::Status Admission::TryAdmit(uint64_t event_count, uint64_t byte_count) {
  if (std::optional<RefusalReason> reason = Check(event_count, byte_count)) {
    return absl::ResourceExhaustedError(
        absl::StrCat("coalescer bound reached: ", RefusalReasonName(*reason)));
  }
  callers_++;
  queued_events_ += event_count;
  queued_bytes_ += byte_count;
  return absl::OkStatus();
}

void Admission::ReleaseQueued(uint64_t event_count, uint64_t byte_count) {
  TB_ASSERT(queued_events_ >= event_count);
  TB_ASSERT(queued_bytes_ >= byte_count);
  queued_events_ -= event_count;
  queued_bytes_ -= byte_count;
}

void Admission::ReleaseCaller() {
  TB_ASSERT(callers_ > 0);
  callers_--;
}

}  // namespace tb::proxy
