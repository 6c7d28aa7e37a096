#include "pool/internal/resubmission.h"

#include "absl/status/status.h"
#include "client_core/header.h"
#include "client_core/outcome.h"
#include "client_core/session.h"
#include "gtest/gtest.h"
#include "pool/constants.h"

namespace tb::pool::internal {
namespace {

absl::Status Evicted(EvictionReason reason, Outcome outcome) {
  return WithOutcome(EvictionStatus(reason), outcome);
}

TEST(ChurnReason, SessionEvictionsBeforeExecutionAreChurn) {
  EXPECT_EQ(ChurnReason(Evicted(EvictionReason::kNoSession, Outcome::kNotApplied)),
            ResubmissionReason::kNoSession);
  EXPECT_EQ(ChurnReason(Evicted(EvictionReason::kSessionTooLow, Outcome::kNotApplied)),
            ResubmissionReason::kSessionTooLow);
  EXPECT_EQ(ChurnReason(Evicted(EvictionReason::kSessionReleaseMismatch, Outcome::kNotApplied)),
            ResubmissionReason::kSessionReleaseMismatch);
}

TEST(ChurnReason, SendRefusedByASessionNoLongerReadyIsChurn) {
  EXPECT_EQ(ChurnReason(WithOutcome(absl::FailedPreconditionError("session is not ready: evicted"),
                                    Outcome::kNotApplied)),
            ResubmissionReason::kSendRefused);
}

TEST(ChurnReason, OtherFailuresAreNotChurn) {
  // The cluster may have applied it.
  EXPECT_FALSE(ChurnReason(Evicted(EvictionReason::kNoSession, Outcome::kUnknown)).has_value());
  // The request itself is bad, or the release refused: every session would fail the same way.
  EXPECT_FALSE(
      ChurnReason(Evicted(EvictionReason::kInvalidRequestBody, Outcome::kNotApplied)).has_value());
  EXPECT_FALSE(ChurnReason(Evicted(EvictionReason::kInvalidRequestBodySize, Outcome::kNotApplied))
                   .has_value());
  EXPECT_FALSE(
      ChurnReason(Evicted(EvictionReason::kClientReleaseTooLow, Outcome::kNotApplied)).has_value());
  // A body too large for the limit, refused before the wire.
  EXPECT_FALSE(ChurnReason(WithOutcome(absl::InvalidArgumentError("body exceeds the limit"),
                                       Outcome::kNotApplied))
                   .has_value());
  // Drain and shutdown.
  EXPECT_FALSE(ChurnReason(WithOutcome(absl::UnavailableError("session pool draining"),
                                       Outcome::kNotApplied))
                   .has_value());
  EXPECT_FALSE(
      ChurnReason(WithOutcome(absl::UnavailableError("session pool drained"), Outcome::kUnknown))
          .has_value());
  // No outcome at all.
  EXPECT_FALSE(ChurnReason(absl::FailedPreconditionError("not ready")).has_value());
}

TEST(MayResubmit, BoundedByAttempts) {
  PooledMessage message;
  for (uint32_t attempts = 1; attempts < kMessageAttemptsMax; attempts++) {
    message.attempts = attempts;
    EXPECT_TRUE(MayResubmit(message, absl::Now())) << attempts;
  }
  message.attempts = kMessageAttemptsMax;
  EXPECT_FALSE(MayResubmit(message, absl::Now()));
}

TEST(MayResubmit, BoundedByTheEarliestCallerDeadline) {
  const absl::Time now = absl::FromUnixSeconds(1000);
  PooledMessage message{.attempts = 1};
  EXPECT_TRUE(MayResubmit(message, now));  // No deadline.
  message.message.deadline = now + absl::Milliseconds(1);
  EXPECT_TRUE(MayResubmit(message, now));
  message.message.deadline = now;
  EXPECT_FALSE(MayResubmit(message, now));
}

}  // namespace
}  // namespace tb::pool::internal
