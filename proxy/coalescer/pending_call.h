// One caller's batch as the coalescer keeps it from Submit until its answer (internal to
// proxy/coalescer/coalescer.cc and its tests).
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client_core/operation.h"
#include "proxy/coalescer/admission.h"
#include "proxy/submitter.h"

namespace tb::proxy::internal {

struct PendingCall {
  // Where the call stands:
  //   kQueued:   waiting in its operation's queue; its permit counts against the queue bounds.
  //   kInFlight: its batch travels in message `message_id`; its permit keeps only the caller
  //              slot.
  enum class State { kQueued, kInFlight };

  uint64_t id = 0;  // Grows in submission order.
  const OperationInfo* info = nullptr;
  std::vector<uint8_t> events;  // Emptied once encoded into a message.
  uint32_t event_count = 0;
  uint32_t expected_results = 0;
  uint64_t ordering_key = 0;
  absl::Time deadline = absl::InfiniteFuture();
  absl::Time submitted_at;
  State state = State::kQueued;
  uint64_t message_id = 0;
  // Empty once the caller was answered early (deadline passed in flight).
  SubmitCallback callback;
  // Its share of the coalescer's bounds, held from admission until the call is forgotten. Only
  // touched under the coalescer's lock.
  AdmissionPermit permit;
};

// An answer to deliver once the coalescer's lock is released.
struct Completion {
  SubmitCallback callback;
  absl::StatusOr<SubmitResult> result;
  uint8_t operation = 0;
  absl::Time submitted_at;
};

}  // namespace tb::proxy::internal
