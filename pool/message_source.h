// The contract between the session pool and whatever fills its messages (the coalescer).
//
// The pool pulls: whenever one of its sessions is registered and has nothing in flight, it asks
// the source for the next message that fits that session's batch_size_limit. The source calls
// the pool's Wake() (see session_pool.h) when new work arrives, so an idle session picks it up at
// once. Pulling is what makes batches grow on their own while every session is busy.
//
//   std::optional<tb::pool::OutgoingMessage> message = source.TakeMessage(limit);
//   ... send message->body; later: std::move(message->on_done)(reply_or_error);
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace tb::pool {

// What the cluster answered to one message.
struct ClusterReply {
  uint64_t op = 0;         // The op number the request committed at.
  uint64_t timestamp = 0;  // The reply's cluster timestamp (shared by all batches of the message).
  std::vector<uint8_t> body;
};

// One encoded request body, sent byte-identically (retries included) until it is answered.
struct OutgoingMessage {
  uint8_t operation = 0;  // A forwardable operation (137, 140..147).
  std::vector<uint8_t> body;
  absl::Time enqueued_at;  // When its oldest batch was queued (for metrics and latency).
  // The earliest deadline among its callers (absl::Now() time base). A message that comes back
  // not applied because a session was lost is resubmitted on another session only before it.
  absl::Time deadline = absl::InfiniteFuture();
  // Runs exactly once on the pool's I/O thread: with the reply, or with an error that carries an
  // Outcome payload (client_core/outcome.h) saying whether the message may have been applied.
  // Not before the pool has given up resubmitting it, so later calls that must follow it (the
  // coalescer's ordering keys) stay held back while it travels again.
  absl::AnyInvocable<void(absl::StatusOr<ClusterReply>) &&> on_done;
};

class MessageSource {
 public:
  virtual ~MessageSource() = default;
  // Called on the pool's I/O thread by an idle, registered session. Returns the next message
  // whose body fits `batch_size_limit` (and whose reply fits a message), or nullopt when there
  // is nothing to send. Must not block.
  virtual std::optional<OutgoingMessage> TakeMessage(uint32_t batch_size_limit) = 0;
};

}  // namespace tb::pool
