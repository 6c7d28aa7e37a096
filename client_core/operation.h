// The operation table of TigerBeetle 0.17.x (PROTOCOL.md §10) and the limit formulas of §10.3.
//
// Everything that decides how many events fit in a batch, how big a reply can get, and which
// operations may share a message lives here, so the client, the coalescer and the dev cluster
// apply one set of rules.
//
//   const tb::OperationInfo* info = tb::FindOperation(146);
//   uint32_t per_batch = tb::EventMax(*info, batch_size_limit);   // 8189 by default.
#pragma once

#include <cstdint>
#include <span>

namespace tb {

enum class Operation : uint8_t {
  kReserved = 0,
  kRoot = 1,
  kRegister = 2,
  kReconfigure = 3,
  kPulse = 4,
  kUpgrade = 5,
  kNoop = 6,
  kStateMachinePulse = 128,  // Crashes a real replica if a client sends it: never forwarded.
  kDeprecatedCreateAccountsUnbatched = 129,
  kDeprecatedCreateTransfersUnbatched = 130,
  kDeprecatedLookupAccountsUnbatched = 131,
  kDeprecatedLookupTransfersUnbatched = 132,
  kDeprecatedGetAccountTransfersUnbatched = 133,
  kDeprecatedGetAccountBalancesUnbatched = 134,
  kDeprecatedQueryAccountsUnbatched = 135,
  kDeprecatedQueryTransfersUnbatched = 136,
  kGetChangeEvents = 137,
  kDeprecatedCreateAccountsSparse = 138,
  kDeprecatedCreateTransfersSparse = 139,
  kLookupAccounts = 140,
  kLookupTransfers = 141,
  kGetAccountTransfers = 142,
  kGetAccountBalances = 143,
  kQueryAccounts = 144,
  kQueryTransfers = 145,
  kCreateAccounts = 146,
  kCreateTransfers = 147,
};

inline constexpr uint8_t kStateMachineOperationMin = 128;
inline constexpr uint8_t kStateMachineOperationMax = 147;

// How the results of a batch relate to its events.
enum class ResultShape : uint8_t {
  kDense,      // One result per event, in order (146/147).
  kSparse,     // One result per failed event (deprecated creates).
  kFoundOnly,  // The objects that exist, in request order (lookups).
  kQuery,      // Exactly one filter per batch; 0..min(limit, result_max) objects.
  kNone,       // 128: no events, no results.
};

struct OperationInfo {
  Operation operation;
  const char* name;        // TigerBeetle's snake-case name, e.g. "create_transfers".
  uint32_t event_size;     // Bytes per event (E).
  uint32_t result_size;    // Bytes per result (R).
  bool multi_batch;        // Body is multi-batch encoded (§11).
  ResultShape shape;
  uint32_t limit_offset;   // For kQuery: offset of the u32 `limit` in the filter; else 0.
};

// The state-machine operation with this number (128..147), or nullptr.
const OperationInfo* FindOperation(uint8_t operation);
const OperationInfo& GetOperationInfo(Operation operation);  // Asserts it is in the table.

// The operations tbproxy accepts from applications and sends to a cluster (PROTOCOL.md §14.13):
// 137 and 140..147. Everything else, 128 above all, is refused before it is queued.
bool IsForwardableOperation(uint8_t operation);

// Only these may share a message with other batches of the same operation (§14.2).
inline bool CanCoalesce(const OperationInfo& info) { return info.multi_batch; }

// Size of a multi-batch trailer for `batch_count` batches of `element_size`-byte elements:
// T(x, n) = ceil((2n + 2) / x) · x.
constexpr uint32_t TrailerSize(uint32_t element_size, uint32_t batch_count) {
  const uint32_t bytes = 2 * batch_count + 2;
  return (bytes + element_size - 1) / element_size * element_size;
}

// Events allowed in one batch for a session whose registered limit is `batch_size_limit` (§10.3).
uint32_t EventMax(const OperationInfo& info, uint32_t batch_size_limit);
// Results one query batch can return: 8189 for multi-batch queries, 2730 for 137, 8190 for the
// deprecated unbatched queries. For batchable operations this equals EventMax at the default
// limit and is only an upper bound.
uint32_t ResultMax(const OperationInfo& info);

// Results the reply will hold for one batch of events, as the replica computes it when it checks
// that the reply fits (§11.4): the event count for creates and lookups (also sparse creates),
// min(limit, ResultMax) for queries. `events` must be a whole number of events (asserted).
uint32_t ExpectedResultCount(const OperationInfo& info, std::span<const uint8_t> events);

}  // namespace tb
