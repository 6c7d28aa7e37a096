// Settings of a SessionPool and their validation.
//
// Every field has a bound; ValidateSessionPoolOptions() checks them all at start-up and names the
// first bad field in its Status, so a bad flag is reported before any connection is opened.
//
//   TB_ASSIGN_OR_RETURN(auto replicas, tb::ParseHostPortList("127.0.0.1:3000", {}));
//   tb::pool::SessionPoolOptions options{.replica_addresses = replicas};
//   TB_RETURN_IF_ERROR(tb::pool::ValidateSessionPoolOptions(options));
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "client_core/constants.h"
#include "client_core/tcp_transport.h"
#include "client_core/u128.h"
#include "pool/constants.h"

namespace tb::pool {

struct SessionPoolOptions {
  u128 cluster = 0;
  // Every replica, in the cluster's own --addresses order (PROTOCOL.md §2.2).
  std::vector<ReplicaAddress> replica_addresses;
  // Sessions kept registered at once: one request in flight each.
  uint32_t sessions = 4;
  // Cluster session slots (client ids) the pool may hold at once, replacements included; it stays
  // below the cluster's 64 so other clients keep room. sessions <= session_budget < 64.
  uint32_t session_budget = 8;
  // Period of Session::Tick(). Sessions count their retry and ping timeouts in ticks, so 10 ms
  // (TigerBeetle's own client tick) gives the official client's timing; other values scale it.
  absl::Duration tick_interval = absl::Milliseconds(kTickMs);
  // An idle session that committed nothing for this long sends a cheap committing request, so it
  // is never the least recently committed session the cluster evicts first (PROTOCOL.md §9.3).
  // Keep it well below the time other clients of the cluster need to register 64 sessions.
  absl::Duration keep_warm_interval = absl::Seconds(5);
  // A session whose request has had no reply for this long while the cluster answered other
  // sessions is retired: its callers hear outcome unknown, and a session with a new client id
  // takes its place (within session_budget). A cluster answering no session is an outage, not a
  // stuck session: then the pool keeps waiting. At least kSessionStuckTicksMin ticks.
  absl::Duration session_stuck_timeout = absl::Seconds(30);
  // Delay before replacing a lost session: doubles from min to max while replacements keep failing.
  absl::Duration replacement_backoff_min = absl::Milliseconds(100);
  absl::Duration replacement_backoff_max = absl::Seconds(10);
};

// kInvalidArgument naming the field: no or too many replica addresses (> kReplicaCountMax), an
// empty host or port 0, sessions == 0, sessions > session_budget, session_budget >= 64, a
// duration out of range (session_stuck_timeout: kSessionStuckTicksMin ticks to
// kSessionStuckTimeoutMax).
absl::Status ValidateSessionPoolOptions(const SessionPoolOptions& options);

// The wait before starting a replacement for a session lost after `failures` sessions in a row
// (>= 1) were lost before committing anything: replacement_backoff_min doubled per earlier
// failure, capped at replacement_backoff_max. So a cluster that evicts every new session at once
// sees registrations slow down to one per max, instead of a stream of them.
absl::Duration ReplacementBackoff(const SessionPoolOptions& options, uint32_t failures);

}  // namespace tb::pool
