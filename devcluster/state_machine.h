// The dev cluster's in-memory TigerBeetle 0.17.x state machine (STATE_MACHINE.md): every
// client operation, linked chains, two-phase transfers with expiry, balancing and closing
// transfers, imported events, history, change events and the replica's timestamp rules.
//
//   tb::devcluster::StateMachine machine({.batch_size_limit = tb::kBatchSizeLimitMax});
//   tb::devcluster::ExecuteResult reply = machine.Execute(146, body, now_ns);
//   machine.Tick(now_ns);  // From a ~100 ms timer: expires due pending transfers when idle.
//
// Clock (§3.2): each request takes base = max(last + 1, now_ns) and the timestamp
// T = base + N (N = events of a create request over all batches, else 0); after each request
// and each Tick, pulses run while one is due, each consuming 8191 timestamps. With now_ns = 0
// throughout and Tick(timestamp() + advance) for clock steps, this is exactly the deterministic
// clock of shared/conformance/README.md.
//
// Memory: about 330 bytes per transfer (the record with the account snapshots of its event,
// its id index entry and two per-account index entries), 180 per account and 180 per expiry,
// all in contiguous vectors and flat hash maps; reserve capacity in the options to avoid
// regrowth. Conformance: devcluster/conformance_test.cc runs all 52 shared cases.
//
// Single-threaded: all methods must be called from one thread (or under the caller's lock).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "client_core/constants.h"
#include "client_core/operation.h"
#include "devcluster/database.h"
#include "client_core/replica/executor.h"

namespace tb::devcluster {

// The executor interface lives with the replica protocol (client_core/replica/).
using replica::ExecuteResult;
using replica::Executor;

struct StateMachineOptions {
  // The batch_size_limit the server announces at registration (request size limit − 256), in
  // [kBatchSizeLimitMin, kBatchSizeLimitMax]. Lowers the expiries per pulse and the
  // get_change_events result cap (§18).
  uint32_t batch_size_limit = kBatchSizeLimitMax;
  // Capacity reserved at construction, for predictable memory use.
  uint32_t account_count_reserve = 0;
  uint32_t transfer_count_reserve = 0;
};

class StateMachine final : public Executor {
 public:
  // Asserts that options.batch_size_limit is within bounds (the server validates its flags).
  explicit StateMachine(StateMachineOptions options);

  // See Executor. Operations 129..147 are executed (128 and unknown codes produce an empty
  // reply and change nothing). A body that does not decode produces an empty reply and changes
  // nothing, though callers must validate bodies first.
  ExecuteResult Execute(uint8_t operation, std::span<const uint8_t> body,
                        uint64_t now_ns) override;

  // The replica's idle timer: moves the clock forward to `now_ns` (never back) and runs every
  // pulse that is due. Expiries are otherwise only applied after requests.
  void Tick(uint64_t now_ns);

  // The last timestamp issued (request or pulse); 0 before the first request.
  uint64_t timestamp() const { return timestamp_; }
  const Database& database() const { return database_; }
  // Results per get_change_events request: min(2730, ⌊min(⌊L / 16⌋, 8190) / 2⌋).
  uint32_t change_events_max() const { return change_events_max_; }
  // Expiries per pulse: min(8190, ⌊L / 128⌋).
  uint32_t expiries_per_pulse_max() const { return expiries_per_pulse_max_; }

 private:
  // Executes every batch of a decoded request body; returns the reply body.
  std::vector<uint8_t> ExecuteBatches(const OperationInfo& info,
                                      std::span<const std::span<const uint8_t>> batches,
                                      uint64_t base);
  // The results of one batch, unframed.
  void ExecuteBatch(const OperationInfo& info, std::span<const uint8_t> events,
                    uint64_t batch_last_slot, std::vector<uint8_t>& out);
  void RunDuePulses();

  Database database_;
  uint32_t change_events_max_;
  uint32_t expiries_per_pulse_max_;
  uint64_t timestamp_ = 0;
};

}  // namespace tb::devcluster
