// The dev cluster's view of "something that executes a state-machine operation".
//
// The server decodes and validates a request (tb::ValidateRequestBody), then hands the body to
// an Executor and sends the result back as the reply. Two implementations exist: StateMachine
// (devcluster/state_machine.h), an in-memory TigerBeetle state machine, and an echo executor
// used by the server's own tests.
//
//   tb::devcluster::StateMachine machine({.batch_size_limit = 1024 * 1024 - 256});
//   tb::replica::ExecuteResult result = machine.Execute(operation, body, now_ns);
//   // reply header timestamp = result.timestamp, reply body = result.body
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "client_core/u128.h"

namespace tb::replica {

struct ExecuteResult {
  // The prepare timestamp of the request (STATE_MACHINE.md §3.2), carried in the reply header.
  uint64_t timestamp;
  // The reply body: multi-batch encoded with the result size for multi-batch operations.
  std::vector<uint8_t> body;
};

class Executor {
 public:
  virtual ~Executor() = default;

  // `operation` is a state-machine operation (128..147) whose body already passed
  // tb::ValidateRequestBody (client_core/request_validation.h). `now_ns` is the wall clock.
  // Returns the reply timestamp (prepare timestamp, STATE_MACHINE.md §3.2) and reply body
  // (multi-batch encoded with the result size for multi-batch operations).
  // The get_change_events result cap depends on the request limit (1016 at 32,512; PROTOCOL.md
  // §10.3 note): the server passes its batch_size_limit at construction of StateMachine.
  // Called from one thread at a time.
  virtual ExecuteResult Execute(uint8_t operation, std::span<const uint8_t> body,
                                uint64_t now_ns) = 0;
};

// An executor that answers later (tbproxy's native front end: the batches go to a real cluster).
// Start() begins executing a request that passed every protocol check; the owner later calls
// ReplicaProtocol::Complete(token, ...) exactly once, on the protocol's thread and never from
// inside Start(). Until then the session's request is "in progress": identical retries are
// dropped (PROTOCOL.md §9.1 step 13).
class AsyncExecutor {
 public:
  virtual ~AsyncExecutor() = default;
  // `client` is the session's client id (the key for ordering its requests). `body` is valid
  // only during the call.
  virtual void Start(uint64_t token, u128 client, uint8_t operation,
                     std::span<const uint8_t> body) = 0;
};

// How a pending request ended when it produced no result.
enum class CompletionFailure : uint8_t {
  kDrop,                // Not applied (overload): no answer, the client retries identical bytes.
  kInvalidRequestBody,  // Refused as invalid: evict the session (invalid_request_body).
  kSessionLost,         // Outcome unknown: evict the session (no_session).
};

}  // namespace tb::replica
