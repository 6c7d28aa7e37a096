#include "pool/session_pool_options.h"

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tb::pool {
namespace {

using ::testing::HasSubstr;

SessionPoolOptions ValidOptions() {
  return SessionPoolOptions{.replica_addresses = {{.host = "127.0.0.1", .port = 3000}}};
}

void ExpectInvalid(const SessionPoolOptions& options, const char* field) {
  absl::Status status = ValidateSessionPoolOptions(options);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr(field));
}

TEST(SessionPoolOptions, DefaultsWithOneReplicaAreValid) {
  EXPECT_TRUE(ValidateSessionPoolOptions(ValidOptions()).ok());
}

TEST(SessionPoolOptions, NamesMissingOrTooManyReplicas) {
  SessionPoolOptions options = ValidOptions();
  options.replica_addresses.clear();
  ExpectInvalid(options, "replica_addresses");
  options.replica_addresses.assign(kReplicaCountMax + 1, {.host = "127.0.0.1", .port = 3000});
  ExpectInvalid(options, "replica_addresses");
  options.replica_addresses.resize(kReplicaCountMax);
  EXPECT_TRUE(ValidateSessionPoolOptions(options).ok());
}

TEST(SessionPoolOptions, NamesBadAddress) {
  SessionPoolOptions options = ValidOptions();
  options.replica_addresses[0].port = 0;
  ExpectInvalid(options, "replica_addresses");
  options = ValidOptions();
  options.replica_addresses[0].host.clear();
  ExpectInvalid(options, "replica_addresses");
}

TEST(SessionPoolOptions, SessionsMustBePositiveAndWithinBudget) {
  SessionPoolOptions options = ValidOptions();
  options.sessions = 0;
  ExpectInvalid(options, "sessions");
  options.sessions = 9;
  options.session_budget = 8;
  ExpectInvalid(options, "sessions (9) must not exceed session_budget (8)");
  options.sessions = 8;
  EXPECT_TRUE(ValidateSessionPoolOptions(options).ok());
}

TEST(SessionPoolOptions, BudgetStaysBelowClientsMax) {
  SessionPoolOptions options = ValidOptions();
  options.session_budget = kClientsMaxDefault;
  ExpectInvalid(options, "session_budget");
  options.session_budget = kSessionBudgetMax;
  options.sessions = kSessionBudgetMax;
  EXPECT_TRUE(ValidateSessionPoolOptions(options).ok());
}

TEST(SessionPoolOptions, NamesDurationsOutOfRange) {
  SessionPoolOptions options = ValidOptions();
  options.tick_interval = absl::ZeroDuration();
  ExpectInvalid(options, "tick_interval");
  options = ValidOptions();
  options.tick_interval = absl::Seconds(2);
  ExpectInvalid(options, "tick_interval");
  options = ValidOptions();
  options.keep_warm_interval = absl::Microseconds(1);
  ExpectInvalid(options, "keep_warm_interval");
  options = ValidOptions();
  options.keep_warm_interval = absl::Hours(1);
  ExpectInvalid(options, "keep_warm_interval");
  options = ValidOptions();
  options.replacement_backoff_min = -absl::Seconds(1);
  ExpectInvalid(options, "replacement_backoff_min");
  options = ValidOptions();
  options.replacement_backoff_max = options.replacement_backoff_min - absl::Milliseconds(1);
  ExpectInvalid(options, "replacement_backoff_max");
}

TEST(SessionPoolOptions, StuckTimeoutCoversSeveralResendsAndAtMostAnHour) {
  SessionPoolOptions options = ValidOptions();
  options.session_stuck_timeout = options.tick_interval * static_cast<int64_t>(kSessionStuckTicksMin);
  EXPECT_TRUE(ValidateSessionPoolOptions(options).ok());
  options.session_stuck_timeout -= absl::Nanoseconds(1);
  ExpectInvalid(options, "session_stuck_timeout");
  // The bound scales with the tick: shorter ticks resend sooner.
  options.tick_interval = absl::Milliseconds(1);
  options.session_stuck_timeout = absl::Milliseconds(2500);
  EXPECT_TRUE(ValidateSessionPoolOptions(options).ok());
  options.session_stuck_timeout = kSessionStuckTimeoutMax + absl::Seconds(1);
  ExpectInvalid(options, "session_stuck_timeout");
}

TEST(ReplacementBackoff, DoublesFromMinAndStopsAtMax) {
  SessionPoolOptions options = ValidOptions();
  options.replacement_backoff_min = absl::Milliseconds(100);
  options.replacement_backoff_max = absl::Milliseconds(1000);
  EXPECT_EQ(ReplacementBackoff(options, 1), absl::Milliseconds(100));
  EXPECT_EQ(ReplacementBackoff(options, 2), absl::Milliseconds(200));
  EXPECT_EQ(ReplacementBackoff(options, 4), absl::Milliseconds(800));
  EXPECT_EQ(ReplacementBackoff(options, 5), absl::Milliseconds(1000));
  EXPECT_EQ(ReplacementBackoff(options, 1000000), absl::Milliseconds(1000));
}

TEST(ReplacementBackoff, ZeroMinimumReplacesAtOnce) {
  SessionPoolOptions options = ValidOptions();
  options.replacement_backoff_min = absl::ZeroDuration();
  EXPECT_EQ(ReplacementBackoff(options, 10), absl::ZeroDuration());
}

}  // namespace
}  // namespace tb::pool
