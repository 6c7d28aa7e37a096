// The bound on memory held by gRPC calls that are not done yet (--grpc-call-memory-max).
//
// A call's memory (its request, its results, its response, gRPC's per-call state) stays until
// gRPC is done with the call: until the response is sent, which waits for the client to read
// it. --callers-max stops counting a call once it is answered, so without this bound a client
// that sends large lookups and does not read the responses makes tbproxy hold them all
// (measured: 500 unread unary lookups of 8,189 accounts on one connection, +570 MiB).
//
// Each call reserves a bound on what it may hold (CallMemoryBound) before it is submitted and
// gives it back when gRPC is done with it; a call that does not fit is refused at once with
// kResourceExhausted, outcome not_applied.
//
//   absl::StatusOr<CallMemoryReservation> reserved =
//       budget.TryReserve(CallMemoryBound(request.operation, request.events, CallKind::kUnary));
//   if (!reserved.ok()) return Refuse(reserved.status());
//   ... the call keeps *reserved until OnDone (unary) or its response's OnWriteDone (stream).
//
// Thread-safe: calls start and end on any gRPC thread. The budget must outlive its
// reservations.
#pragma once

#include <cstdint>
#include <span>

#include "absl/status/statusor.h"
#include "proxy/grpc/internal/atomic_bound.h"

namespace tb::proxy {

enum class CallKind : uint8_t {
  kUnary,   // Its own gRPC call, with gRPC's per-call state.
  kStream,  // One request on a Stream RPC, whose own state --stream-rpcs-max bounds.
};

// What a call of `operation` with `events_bytes` of native events may hold, in bytes, until
// gRPC is done with it: a fixed part for the call, and a multiple of its native request and of
// the most results it can get (one per event for creates and lookups, the filter's limit for
// queries, never more than one reply body). The multiples cover the protobuf messages built
// from the native bytes (measured: unread Stream lookups of 8,189 accounts held 3.2 times their
// native request and results; the bound takes 4). `events` are the request's native events (a whole number of them, as
// the converters produce); an operation tbproxy does not know is bounded by one reply body.
uint64_t CallMemoryBound(uint8_t operation, std::span<const uint8_t> events, CallKind kind);

// One call's reserved bytes (units() of them). Move-only; gives them back once, when released,
// moved from or destroyed; an empty (default-constructed, moved-from or released) reservation
// holds nothing.
using CallMemoryReservation = internal::BoundUnits;

class CallMemoryBudget {
 public:
  // `bytes_max` >= 1.
  explicit CallMemoryBudget(uint64_t bytes_max);
  CallMemoryBudget(const CallMemoryBudget&) = delete;
  CallMemoryBudget& operator=(const CallMemoryBudget&) = delete;

  // `bytes` of the budget, or kResourceExhausted with outcome not_applied (naming
  // --grpc-call-memory-max) when they do not fit. Never lets more than bytes_max be reserved
  // at once, whatever the threads do.
  absl::StatusOr<CallMemoryReservation> TryReserve(uint64_t bytes);

  uint64_t reserved() const { return reserved_.taken(); }
  uint64_t bytes_max() const { return reserved_.max(); }
  // Refusals since construction (tbproxy_grpc_call_memory_refused_total).
  uint64_t refused() const { return reserved_.refused(); }

 private:
  internal::AtomicBound reserved_;
};

}  // namespace tb::proxy
