// A driver that reaches the cluster the way applications do today without tbproxy: client_core
// sessions (one request in flight each) on one Asio thread, each caller's batch sent alone as one
// request. At most `sessions` sessions (a cluster keeps clients_max, 64 by default, and evicts
// beyond; a replica serves only 32 client connections at once, PROTOCOL.md §2.4); callers beyond
// that wait in a FIFO for a free session, and that wait counts in their latency.
//
// The same driver reaches tbproxy's native TigerBeetle-protocol port (--path=native): there the
// sessions are tbproxy's virtual sessions, one per caller.
//
//   TB_ASSIGN_OR_RETURN(auto driver, tb::bench::MakeDirectDriver({.addresses = addresses,
//                                                                .sessions = 64}));
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "bench/loadgen/driver.h"
#include "client_core/tcp_transport.h"
#include "client_core/u128.h"

namespace tb::bench {

inline constexpr uint32_t kDirectSessionsMax = 16384;  // Native: one per caller.
inline constexpr size_t kDirectQueueMax = 1000000;

struct DirectDriverOptions {
  u128 cluster = 0;
  std::vector<ReplicaAddress> addresses;
  uint32_t sessions = 1;  // 1..kDirectSessionsMax.
  absl::Duration register_timeout = absl::Seconds(20);
};

// Registers every session first (kUnavailable if they are not all registered in time, e.g. more
// sessions than the cluster's clients_max evict each other).
absl::StatusOr<std::unique_ptr<Driver>> MakeDirectDriver(DirectDriverOptions options);

}  // namespace tb::bench
