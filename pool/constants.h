// The session pool's limits, each with its reason, in one place (as TigerBeetle's
// src/constants.zig). SessionPoolOptions defaults and ValidateSessionPoolOptions use these.
#pragma once

#include <cstdint>

#include "absl/time/time.h"
#include "client_core/constants.h"

namespace tb::pool {

// The cluster's session table holds kClientsMaxDefault (64) sessions shared by every client of
// the cluster; the pool must leave room for the others, so its budget stays strictly below it.
inline constexpr uint32_t kSessionBudgetMax = kClientsMaxDefault - 1;
// Sessions counts their retry and ping timeouts in ticks; a tick of at most one second keeps
// retries and keep-warm requests timely.
inline constexpr absl::Duration kTickIntervalMax = absl::Seconds(1);
// A keep-warm interval longer than this lets a busy cluster evict an idle session first.
inline constexpr absl::Duration kKeepWarmIntervalMax = absl::Minutes(10);
// Sessions a message may be tried on when the pool's own session churn sends it back not applied
// (evicted for no_session before it executed, refused by a session that was no longer ready).
// One churn is routine (a session pushed out of the cluster's table); a second in a row is a
// cluster evicting sessions faster than the pool registers them, and a third says waiting longer
// will not help, so the caller hears the error while its deadline still leaves time to act.
inline constexpr uint32_t kMessageAttemptsMax = 3;
// A session resends its request at most 2·rtt + 1 + 999 ticks apart (about 10 s at 10 ms ticks,
// client_core/session.h). A request must go unanswered for more than two such gaps before its
// session counts as stuck, so that a session merely waiting for its next resend (after a lost
// reply, or an outage that just ended) is never retired: 2500 ticks, 25 s at 10 ms.
inline constexpr uint64_t kSessionStuckTicksMin = 2500;
inline constexpr absl::Duration kSessionStuckTimeoutMax = absl::Hours(1);

static_assert(kMessageAttemptsMax >= 1);
static_assert(kSessionBudgetMax >= 1 && kSessionBudgetMax < kClientsMaxDefault);
static_assert(absl::Milliseconds(kTickMs) <= kTickIntervalMax);

}  // namespace tb::pool
