// Read operations of the state machine (STATE_MACHINE.md §11–§15): lookups, account-filter
// queries, query filters and change events. Each function appends its wire-format results to
// `out` and returns how many it appended. Invalid filters select nothing (§12–§15), they are not
// errors.
//
//   std::vector<uint8_t> out;
//   uint32_t count = QueryTransfers(db, filter, /*result_max=*/8189, out);
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "client_core/types.h"
#include "devcluster/database.h"

namespace tb::devcluster {

// `ids` is a whole number of 16-byte ids (asserted). One object per id that exists, in request
// order; repeated ids repeat the object; missing ids produce nothing (§11).
uint32_t LookupAccounts(const Database& db, std::span<const uint8_t> ids,
                        std::vector<uint8_t>& out);
uint32_t LookupTransfers(const Database& db, std::span<const uint8_t> ids,
                         std::vector<uint8_t>& out);

// §12 (Transfer results) and §13 (AccountBalance results); at most min(limit, result_max).
uint32_t GetAccountTransfers(const Database& db, const AccountFilter& filter, uint32_t result_max,
                             std::vector<uint8_t>& out);
uint32_t GetAccountBalances(const Database& db, const AccountFilter& filter, uint32_t result_max,
                            std::vector<uint8_t>& out);

// §14 (Account and Transfer results).
uint32_t QueryAccounts(const Database& db, const QueryFilter& filter, uint32_t result_max,
                       std::vector<uint8_t>& out);
uint32_t QueryTransfers(const Database& db, const QueryFilter& filter, uint32_t result_max,
                        std::vector<uint8_t>& out);

// §15 (ChangeEvent results), ascending by timestamp.
uint32_t GetChangeEvents(const Database& db, const ChangeEventsFilter& filter,
                         uint32_t result_max, std::vector<uint8_t>& out);

}  // namespace tb::devcluster
