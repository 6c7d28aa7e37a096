// The seam between the load loop (runner.h) and one way of reaching the cluster: through tbproxy
// over gRPC (typed, raw, stream; grpc_driver.h) or directly through client_core sessions
// (direct_driver.h).
#pragma once

#include <cstdint>
#include <memory>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "bench/loadgen/workload.h"

namespace tb::bench {

// Runs exactly once per started call, on a driver thread: OK only if the call succeeded AND every
// result checked out (workload.h); otherwise the error says which. It may call Start() again.
using CallDone = absl::AnyInvocable<void(absl::Status) &&>;

class Driver {
 public:
  virtual ~Driver() = default;
  // Starts `call` on behalf of caller number `caller` (a driver may map callers to channels,
  // streams or sessions). Thread-safe; never blocks on the network.
  virtual void Start(uint32_t caller, std::shared_ptr<const Call> call, CallDone done) = 0;
  // Called once after every started call has completed; closes streams and sessions.
  virtual void Finish() {}
};

// Runs `call` and waits for it (setup calls). Must not be called from a driver thread.
absl::Status RunBlocking(Driver* driver, std::shared_ptr<const Call> call);

}  // namespace tb::bench
