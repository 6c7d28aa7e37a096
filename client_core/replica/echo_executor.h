// An Executor that answers every event without keeping any state, as fast as it can: for load
// tests of clients and of tbproxy where the state machine's own cost must not count.
//
//   creates (146/147)        -> one `created` result per event, consecutive timestamps
//   sparse creates (138/139, 129/130) -> no failures (empty result batches)
//   lookups, queries, 137    -> nothing found (empty result batches / empty body)
//
// Timestamps follow STATE_MACHINE.md §3.2 (base = max(last + 1, now), T = base + events), so the
// reply header looks exactly like a real cluster's.
//
//   tb::replica::EchoExecutor echo;
//   tb::replica::ReplicaProtocol protocol(options, &echo);
#pragma once

#include <cstdint>
#include <span>

#include "client_core/replica/executor.h"

namespace tb::replica {

class EchoExecutor final : public Executor {
 public:
  // `body` must have passed tb::ValidateRequestBody for `operation` (asserted where it matters).
  ExecuteResult Execute(uint8_t operation, std::span<const uint8_t> body,
                        uint64_t now_ns) override;

 private:
  uint64_t timestamp_ = 0;
};

}  // namespace tb::replica
