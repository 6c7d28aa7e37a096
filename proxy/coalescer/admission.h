// The bounds of the coalescer: queued events, queued bytes and known callers. An admitted call
// holds an AdmissionPermit for as long as the coalescer knows it; the permit gives its units
// back when it is released or destroyed, so no exit path can leak them.
//
//   absl::StatusOr<AdmissionPermit> permit = admission.TryAdmit(events, bytes);
//   if (!permit.ok()) return permit.status();  // kResourceExhausted, AdmissionRefusal() says why
//   permit->ReleaseQueued();                   // the batch left the queue; the caller stays known
//
// Not thread-safe: the coalescer holds its lock around TryAdmit and around every release and
// destruction of a permit that still holds units. The Admission must outlive its permits.
#pragma once

#include <cstdint>
#include <optional>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "proxy/coalescer/coalescer_options.h"

namespace tb::proxy {

struct AdmissionLimits {
  uint64_t queued_events_max = 0;
  uint64_t queued_bytes_max = 0;
  uint32_t callers_max = 0;
};

class Admission;

// One admitted caller's share of the bounds: one caller slot plus its queued events and bytes.
// Move-only; an empty (default-constructed, moved-from or released) permit holds nothing.
class AdmissionPermit {
 public:
  AdmissionPermit() = default;
  AdmissionPermit(AdmissionPermit&& other) noexcept;
  AdmissionPermit& operator=(AdmissionPermit&& other) noexcept;
  AdmissionPermit(const AdmissionPermit&) = delete;
  AdmissionPermit& operator=(const AdmissionPermit&) = delete;
  ~AdmissionPermit() { Release(); }

  // The batch left the queue (taken into a message): gives back its events and bytes and keeps
  // the caller slot. Precondition: queued().
  void ReleaseQueued();
  // Gives back everything still held. Does nothing on an empty permit.
  void Release();

  bool held() const { return admission_ != nullptr; }
  bool queued() const { return held() && queued_; }

 private:
  friend class Admission;
  AdmissionPermit(Admission* admission, uint64_t event_count, uint64_t byte_count)
      : admission_(admission), event_count_(event_count), byte_count_(byte_count) {}

  Admission* admission_ = nullptr;
  uint64_t event_count_ = 0;
  uint64_t byte_count_ = 0;
  bool queued_ = true;
};

class Admission {
 public:
  explicit Admission(AdmissionLimits limits) : limits_(limits) {}
  Admission(const Admission&) = delete;
  Admission& operator=(const Admission&) = delete;

  // A permit for a call of `event_count` events and `byte_count` bytes, or kResourceExhausted
  // naming the first bound it would break (AdmissionRefusal() returns which).
  absl::StatusOr<AdmissionPermit> TryAdmit(uint64_t event_count, uint64_t byte_count);

  uint64_t queued_events() const { return queued_events_; }
  uint64_t queued_bytes() const { return queued_bytes_; }
  uint32_t callers() const { return callers_; }

 private:
  friend class AdmissionPermit;
  std::optional<RefusalReason> Check(uint64_t event_count, uint64_t byte_count) const;
  void ReleaseQueued(uint64_t event_count, uint64_t byte_count);
  void ReleaseCaller();

  AdmissionLimits limits_;
  uint64_t queued_events_ = 0;
  uint64_t queued_bytes_ = 0;
  uint32_t callers_ = 0;
};

// The bound a TryAdmit refusal names; nullopt for any other status.
std::optional<RefusalReason> AdmissionRefusal(const absl::Status& status);

}  // namespace tb::proxy
