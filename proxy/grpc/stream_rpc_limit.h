// The bound on Stream RPCs open at once, over all clients and connections (--stream-rpcs-max).
// An open stream costs gRPC memory (about 17 KiB idle) and, while idle, holds nothing of the
// coalescer's bounds, so without this bound idle streams could grow until memory runs out.
//
//   absl::StatusOr<StreamRpcSlot> slot = limit.TryAcquire();
//   if (!slot.ok()) return Refuse(slot.status());  // kResourceExhausted, outcome not_applied
//   ... the stream keeps *slot until it finishes; slot.Release() or its destruction frees it.
//
// Thread-safe: streams open and finish on any gRPC thread. The limit must outlive its slots.
#pragma once

#include <cstdint>

#include "absl/status/statusor.h"
#include "proxy/grpc/internal/atomic_bound.h"

namespace tb::proxy {

// One open stream's place under the bound. Move-only; gives it back once, when released, moved
// from or destroyed; an empty (default-constructed, moved-from or released) slot holds nothing.
using StreamRpcSlot = internal::BoundUnits;

class StreamRpcLimit {
 public:
  // `max` >= 1.
  explicit StreamRpcLimit(uint32_t max);
  StreamRpcLimit(const StreamRpcLimit&) = delete;
  StreamRpcLimit& operator=(const StreamRpcLimit&) = delete;

  // A slot, or kResourceExhausted with outcome not_applied when `max` streams are open. Never
  // lets more than `max` slots be held at once, whatever the threads do.
  absl::StatusOr<StreamRpcSlot> TryAcquire();

  uint32_t open() const { return static_cast<uint32_t>(open_.taken()); }
  // Refusals since construction (tbproxy_grpc_streams_refused_total).
  uint64_t refused() const { return open_.refused(); }

 private:
  internal::AtomicBound open_;  // One unit per open stream.
};

}  // namespace tb::proxy
