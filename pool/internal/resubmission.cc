#include "pool/internal/resubmission.h"

#include "client_core/header.h"
#include "client_core/outcome.h"
#include "client_core/session.h"
#include "pool/constants.h"

namespace tb::pool::internal {

std::optional<ResubmissionReason> ChurnReason(const absl::Status& failure) {
  if (failure.ok() || GetOutcome(failure) != Outcome::kNotApplied) return std::nullopt;
  const std::optional<EvictionReason> eviction = GetEvictionReason(failure);
  if (!eviction.has_value()) {
    // Session::SendRequest refuses with kFailedPrecondition only when the session cannot send
    // now; kInvalidArgument says the message itself is bad and would fail on every session.
    if (failure.code() == absl::StatusCode::kFailedPrecondition) {
      return ResubmissionReason::kSendRefused;
    }
    return std::nullopt;
  }
  switch (*eviction) {
    case EvictionReason::kNoSession:
      return ResubmissionReason::kNoSession;
    case EvictionReason::kSessionTooLow:
      return ResubmissionReason::kSessionTooLow;
    case EvictionReason::kSessionReleaseMismatch:
      return ResubmissionReason::kSessionReleaseMismatch;
    default:
      return std::nullopt;  // The request or the release: a new session fares the same.
  }
}

bool MayResubmit(const PooledMessage& message, absl::Time now) {
  return message.attempts < kMessageAttemptsMax && now < message.message.deadline;
}

}  // namespace tb::pool::internal
