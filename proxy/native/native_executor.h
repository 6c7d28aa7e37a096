// Runs the requests of official TigerBeetle clients (native front end) through the Submitter:
// each batch of a request becomes one Submit with the virtual session's ordering key, so a
// session's batches apply in order and share cluster messages with every other caller's.
//
// When every batch has answered, the gathered reply body (same batch count and order, encoded
// with the operation's result size) or the failure is handed to `complete`, which must bring it
// back to the ReplicaProtocol's thread (ReplicaProtocol::Complete is not thread-safe).
//
// Failure mapping (all batches of a request together):
//   every batch refused and not applied (kResourceExhausted, outcome not_applied) -> kDrop: the
//     client retries identical bytes, as with a replica whose pipeline is full;
//   any batch refused as invalid (kInvalidArgument)                        -> kInvalidRequestBody;
//   anything else (outcome unknown, or some batches applied and others not)  -> kSessionLost:
//     the virtual session is evicted so the application sees an error instead of a reply that
//     might be wrong.
//
//   NativeExecutor executor(&submitter, [&](uint64_t token, NativeCompletion completion) {
//     asio::post(io, [&, token, c = std::move(completion)]() mutable { Finish(token, c); });
//   });
#pragma once

#include <atomic>
#include <cstdint>
#include <span>
#include <variant>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/time/time.h"
#include "client_core/replica/executor.h"
#include "client_core/operation.h"
#include "client_core/u128.h"
#include "proxy/constants.h"
#include "proxy/submitter.h"

namespace tb::proxy {

using NativeCompletion = std::variant<replica::ExecuteResult, replica::CompletionFailure>;

// How one submitted batch ended, for MapFailures (exposed for tests).
replica::CompletionFailure MapFailure(const absl::Status& status);

// The ordering key of a virtual session: derived from its client id, never 0.
uint64_t OrderingKeyOf(u128 client);

class NativeExecutor final : public replica::AsyncExecutor {
 public:
  // `submitter` is not owned and outlives this object and every callback it runs. `complete`
  // may be called on any thread (the Submitter's), exactly once per Start().
  NativeExecutor(Submitter* submitter,
                 absl::AnyInvocable<void(uint64_t token, NativeCompletion completion)> complete,
                 absl::Duration request_timeout = kNativeRequestTimeout);

  void Start(uint64_t token, u128 client, uint8_t operation,
             std::span<const uint8_t> body) override;

  // Any thread: batches handed to the Submitter so far (empty batches are not submitted).
  uint64_t batches_submitted() const { return batches_submitted_.load(std::memory_order_relaxed); }

 private:
  struct Gather;
  void StartSingle(uint64_t token, u128 client, const OperationInfo& info,
                   std::span<const uint8_t> batch);
  void Finish(Gather& gather);
  // The reply body of a request whose batches all succeeded (one result per batch, in order);
  // timestamp 0 (nothing submitted) takes the clock.
  static replica::ExecuteResult ResultOf(const OperationInfo& info, uint64_t timestamp,
                                         std::span<std::vector<uint8_t>> results);

  Submitter* submitter_;
  absl::AnyInvocable<void(uint64_t, NativeCompletion)> complete_;
  absl::Duration request_timeout_;
  std::atomic<uint64_t> batches_submitted_{0};
};

}  // namespace tb::proxy
