// What the load generator sends and how it checks every answer, independent of the path (gRPC
// typed, raw, stream, or a direct cluster session).
//
//   tb::bench::Workload workload(options);                 // ids unique to this run
//   std::shared_ptr<const tb::bench::Call> call = workload.NextCall(sequence);
//   absl::Status ok = tb::bench::CheckCreateStatuses(*call, statuses);
//
// Events are built in TigerBeetle's native layout (client_core/types.h); the gRPC paths convert
// them. Accounts and a few seed transfers are created first (SetupCalls) so that transfers and
// lookups of every kind succeed: a correct cluster answers `created` to every create and finds
// every looked-up id (except an echo cluster, which keeps nothing: then lookups find nothing).
//
// Thread-safety: NextCall() and the checks may be called from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "client_core/operation.h"
#include "client_core/u128.h"

namespace tb::bench {

// One caller's batch: the operation and its events in native layout, plus what must come back.
struct Call {
  Operation operation = Operation::kCreateTransfers;
  uint32_t event_count = 0;
  std::vector<uint8_t> events;     // event_count · event_size bytes.
  std::vector<u128> lookup_ids;    // For lookups: the ids asked for, in order.
  bool expect_found = true;        // Lookups: every id must be found (false: none may be).
};

struct MixEntry {
  Operation operation;
  uint32_t weight;
};

// Parses "create_transfers:90,lookup_accounts:10" (weights > 0; operations create_transfers,
// create_accounts, lookup_accounts, lookup_transfers).
absl::StatusOr<std::vector<MixEntry>> ParseMix(const std::string& text);

struct WorkloadOptions {
  std::vector<MixEntry> mix = {{Operation::kCreateTransfers, 1}};
  uint32_t events_per_call = 1;   // 1..8189.
  uint32_t accounts = 1024;       // Accounts created by setup, 2..8189.
  uint32_t seed_transfers = 256;  // Transfers created by setup for lookup_transfers, 1..8189.
  uint64_t run_tag = 0;           // High id bits unique to this run; 0: random.
  bool echo = false;              // The cluster keeps nothing: lookups find nothing.
  uint32_t ledger = 1;
};

class Workload {
 public:
  explicit Workload(WorkloadOptions options);

  // Calls that must all succeed before the measured load: the accounts, then the seed transfers.
  std::vector<std::shared_ptr<const Call>> SetupCalls() const;
  // The next call of the mix: the operation is chosen by weight from `sequence` (any counter the
  // caller keeps); every created id is new to this run.
  std::shared_ptr<const Call> NextCall(uint64_t sequence);
  // The same, written over `call` (its buffers are reused: no allocation once they are large
  // enough).
  void FillNextCall(uint64_t sequence, Call* call);

  const WorkloadOptions& options() const { return options_; }

 private:
  u128 AccountId(uint32_t index) const;
  u128 SeedTransferId(uint32_t index) const;
  void CreateTransfers(uint32_t event_count, Call* call);
  void CreateAccounts(uint32_t event_count, Call* call);
  void Lookup(Operation operation, uint64_t sequence, Call* call);

  const WorkloadOptions options_;
  const uint64_t run_tag_;
  uint32_t weight_total_ = 0;
  std::atomic<uint64_t> next_transfer_{1};
  std::atomic<uint64_t> next_account_{1};
};

// Checks a create reply: exactly one status per event, every one `created` (0xFFFFFFFF).
absl::Status CheckCreateStatuses(const Call& call, std::span<const uint32_t> statuses);
// Checks a lookup reply: the ids found, in order (all of them, or none for an echo cluster).
absl::Status CheckLookupIds(const Call& call, std::span<const u128> found_ids);
// Checks a native result body of one batch (raw gRPC results, or one batch of a direct reply).
absl::Status CheckNativeResults(const Call& call, std::span<const uint8_t> results);

}  // namespace tb::bench
