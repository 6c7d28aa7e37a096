#include "proxy/coalescer/admission.h"

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "client_core/assert.h"

namespace tb::proxy {
namespace {

// The refused bound travels with the status, so the coalescer can count it without asking again.
constexpr absl::string_view kRefusalPayloadUrl = "type.tbproxy.dev/admission_refusal";

constexpr RefusalReason kBoundReasons[] = {RefusalReason::kQueuedEvents,
                                           RefusalReason::kQueuedBytes, RefusalReason::kCallers};

}  // namespace

AdmissionPermit::AdmissionPermit(AdmissionPermit&& other) noexcept
    : admission_(std::exchange(other.admission_, nullptr)),
      event_count_(other.event_count_),
      byte_count_(other.byte_count_),
      queued_(other.queued_) {}

AdmissionPermit& AdmissionPermit::operator=(AdmissionPermit&& other) noexcept {
  if (this == &other) return *this;
  Release();
  admission_ = std::exchange(other.admission_, nullptr);
  event_count_ = other.event_count_;
  byte_count_ = other.byte_count_;
  queued_ = other.queued_;
  return *this;
}

void AdmissionPermit::ReleaseQueued() {
  TB_ASSERT(queued());
  admission_->ReleaseQueued(event_count_, byte_count_);
  queued_ = false;
}

void AdmissionPermit::Release() {
  if (!held()) return;
  if (queued_) ReleaseQueued();
  admission_->ReleaseCaller();
  admission_ = nullptr;
}

std::optional<RefusalReason> Admission::Check(uint64_t event_count, uint64_t byte_count) const {
  if (callers_ + 1ull > limits_.callers_max) return RefusalReason::kCallers;
  if (queued_events_ + event_count > limits_.queued_events_max) {
    return RefusalReason::kQueuedEvents;
  }
  if (queued_bytes_ + byte_count > limits_.queued_bytes_max) return RefusalReason::kQueuedBytes;
  return std::nullopt;
}

absl::StatusOr<AdmissionPermit> Admission::TryAdmit(uint64_t event_count, uint64_t byte_count) {
  if (std::optional<RefusalReason> reason = Check(event_count, byte_count)) {
    absl::Status refused = absl::ResourceExhaustedError(
        absl::StrCat("coalescer bound reached: ", RefusalReasonName(*reason)));
    refused.SetPayload(kRefusalPayloadUrl, absl::Cord(RefusalReasonName(*reason)));
    return refused;
  }
  callers_++;
  queued_events_ += event_count;
  queued_bytes_ += byte_count;
  return AdmissionPermit(this, event_count, byte_count);
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

std::optional<RefusalReason> AdmissionRefusal(const absl::Status& status) {
  auto payload = status.GetPayload(kRefusalPayloadUrl);  // absl::optional in this Abseil build.
  if (!payload.has_value()) return std::nullopt;
  for (RefusalReason reason : kBoundReasons) {
    if (*payload == RefusalReasonName(reason)) return reason;
  }
  return std::nullopt;
}

}  // namespace tb::proxy
