// Which failed messages the pool sends again on another session (pure decisions, tested without
// sockets). Internal to pool/.
//
//   if (auto reason = ChurnReason(failure); reason && MayResubmit(message, absl::Now())) ...
#pragma once

#include <cstdint>
#include <optional>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "pool/message_source.h"
#include "pool/pool_observer.h"

namespace tb::pool::internal {

// A message from the source as the pool carries it between sessions.
struct PooledMessage {
  OutgoingMessage message;
  uint32_t attempts = 0;  // Sessions that failed it so far.
};

// The reason when `failure` (as the client_core Session reports it) is the pool's own session churn
// and the cluster certainly did not apply the message: an eviction for no_session, session_too_low
// or session_release_mismatch with outcome not_applied, or a send the session refused with
// kFailedPrecondition (it was no longer ready). nullopt for everything else: a request the
// cluster found invalid (invalid_request_*), a release refusal, a body the session refused
// (kInvalidArgument), an unknown outcome, a drain or shutdown.
std::optional<ResubmissionReason> ChurnReason(const absl::Status& failure);

// Whether a churned message may go to another session: fewer than kMessageAttemptsMax sessions
// failed it, and its callers' earliest deadline is still ahead of `now`.
bool MayResubmit(const PooledMessage& message, absl::Time now);

}  // namespace tb::pool::internal
