// create_accounts and create_transfers for one batch (STATE_MACHINE.md §4–§8).
//
// Each function executes the events of one batch in order against `db`, with linked chains,
// imported events and every status in the documented check order, and appends one dense
// CreateResult per event to `results`. `batch_last_slot` is the timestamp slot of the batch's last
// event (§3.2): event i of n gets slot batch_last_slot − n + i + 1.
//
//   std::vector<tb::CreateResult> results;
//   CreateAccounts(db, accounts, /*batch_last_slot=*/timestamp, results);
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "client_core/types.h"
#include "devcluster/database.h"

namespace tb::devcluster {

// `events.size()` must be a multiple of sizeof(Account) (asserted; the body was validated).
// Events are read with memcpy, so `events` needs no particular alignment.
void CreateAccounts(Database& db, std::span<const uint8_t> events, uint64_t batch_last_slot,
                    std::vector<CreateResult>& results);

// As above for transfers. Also schedules expiries and moves db's pulse hint.
void CreateTransfers(Database& db, std::span<const uint8_t> events, uint64_t batch_last_slot,
                     std::vector<CreateResult>& results);

}  // namespace tb::devcluster
