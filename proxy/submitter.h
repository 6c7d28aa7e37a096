// The in-process submission API every front end uses (gRPC, native protocol, benchmarks).
//
// A caller submits one batch of events for one operation and gets exactly its own results, or a
// typed error, through a callback that runs exactly once.
//
//   submitter.Submit({.operation = 147, .events = std::move(bytes)}, {.deadline = deadline},
//                    [](absl::StatusOr<tb::proxy::SubmitResult> result) { ... });
//
// Errors (absl::StatusCode), each with an Outcome payload (client_core/outcome.h) when the
// request may have reached the cluster:
//   kInvalidArgument    the input breaks a rule (sizes, counts, limits, unknown operation);
//                       nothing was queued.
//   kResourceExhausted  a bound is reached (queued events, bytes or callers); nothing was queued.
//   kDeadlineExceeded   the deadline passed: while queued (outcome not_applied) or in flight
//                       (outcome unknown: the results still arrive and are counted).
//   kUnavailable        no session could carry it (cluster unreachable, shutting down); outcome
//                       says whether it was sent.
//   kAborted            the session carrying it was evicted; outcome says whether it was applied.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace tb::proxy {

struct SubmitRequest {
  uint8_t operation = 0;       // 137 or 140..147; anything else is refused.
  std::vector<uint8_t> events;  // Native little-endian events, a whole number of them.
};

struct SubmitOptions {
  absl::Time deadline = absl::InfiniteFuture();
  // Calls with the same non-zero key are applied in submission order, even across sessions.
  // 0: no ordering is promised relative to other calls.
  uint64_t ordering_key = 0;
};

struct SubmitResult {
  uint64_t timestamp = 0;        // The cluster timestamp of the message that carried the batch.
  std::vector<uint8_t> results;  // This caller's results only, native layout.
};

using SubmitCallback = absl::AnyInvocable<void(absl::StatusOr<SubmitResult>) &&>;

class Submitter {
 public:
  virtual ~Submitter() = default;
  // Thread-safe and never blocks. `callback` runs exactly once: inline when the request is
  // refused at once, otherwise later on an internal thread (it must not block either).
  virtual void Submit(SubmitRequest request, SubmitOptions options, SubmitCallback callback) = 0;
  // A call the front end answered `code` before submitting it (a bad token, a request that does
  // not convert, the drain), so that per-call metrics count every call a client made
  // (MeteredSubmitter). `operation` as asked, 0 when unknown. Thread-safe. Default: nothing.
  virtual void OnRefusedBeforeSubmit(uint8_t operation, absl::StatusCode code) {}
};

}  // namespace tb::proxy
