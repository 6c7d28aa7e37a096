// The internal `pulse` operation that expires pending transfers (STATE_MACHINE.md §9.4).
//
//   if (db.pulse_hint() <= timestamp) RunPulse(db, pulse_timestamp, expiries_max);
#pragma once

#include <cstdint>

#include "devcluster/database.h"

namespace tb::devcluster {

// Timestamps one pulse consumes (1 + 8190), whatever the request size limit (§18).
inline constexpr uint64_t kPulseTimestampCount = 8191;
inline constexpr uint32_t kPulseExpiriesMax = 8190;

// Expires, in ascending (expires_at, pending timestamp) order, up to `expiries_max` scheduled
// pending transfers with expires_at <= `pulse_timestamp`; the k-th of K gets the timestamp
// pulse_timestamp − K + k. Then points db's pulse hint at the earliest remaining expiry (or
// "never"). Returns K. Must not run inside a linked-chain scope (asserted).
uint32_t RunPulse(Database& db, uint64_t pulse_timestamp, uint32_t expiries_max);

}  // namespace tb::devcluster
