#include "devcluster/pulse.h"

#include <limits>
#include <optional>
#include <utility>
#include <vector>

#include "client_core/assert.h"
#include "client_core/types.h"

namespace tb::devcluster {
namespace {

void Expire(Database& db, uint32_t transfer_index, uint64_t expires_at, uint64_t timestamp) {
  const TransferRecord& record = db.transfer(transfer_index);
  const Transfer& p = record.transfer;
  TB_ASSERT(record.pending_state == PendingState::kPending);
  Account dr = db.account(record.debit_account_index);
  Account cr = db.account(record.credit_account_index);
  TB_ASSERT(dr.debits_pending >= p.amount && cr.credits_pending >= p.amount);
  dr.debits_pending -= p.amount;
  cr.credits_pending -= p.amount;
  if ((p.flags & transfer_flags::kClosingDebit) != 0) {
    TB_ASSERT((dr.flags & account_flags::kClosed) != 0);
    dr.flags &= ~account_flags::kClosed;
  }
  if ((p.flags & transfer_flags::kClosingCredit) != 0) {
    TB_ASSERT((cr.flags & account_flags::kClosed) != 0);
    cr.flags &= ~account_flags::kClosed;
  }
  const uint32_t debit_index = record.debit_account_index;
  const uint32_t credit_index = record.credit_account_index;
  db.SetAccountState(debit_index, BalancesOf(dr), dr.flags);
  db.SetAccountState(credit_index, BalancesOf(cr), cr.flags);
  db.SetPendingState(transfer_index, PendingState::kExpired);
  db.UnscheduleExpiry(expires_at, transfer_index);
  db.AppendExpiry({.timestamp = timestamp,
                   .transfer_index = transfer_index,
                   .debit_after = {.balances = BalancesOf(dr), .flags = dr.flags},
                   .credit_after = {.balances = BalancesOf(cr), .flags = cr.flags}});
}

}  // namespace

uint32_t RunPulse(Database& db, uint64_t pulse_timestamp, uint32_t expiries_max) {
  TB_ASSERT(!db.scope_open());
  TB_ASSERT(expiries_max > 0 && expiries_max <= kPulseExpiriesMax);
  TB_ASSERT(pulse_timestamp >= kPulseTimestampCount);
  const std::vector<std::pair<uint64_t, uint32_t>> due =
      db.DueExpiries(pulse_timestamp, expiries_max);
  const auto count = static_cast<uint32_t>(due.size());
  for (uint32_t k = 0; k < count; k++) {
    Expire(db, due[k].second, due[k].first, pulse_timestamp - count + k + 1);
  }
  const std::optional<std::pair<uint64_t, uint32_t>> next = db.EarliestExpiry();
  db.set_pulse_hint(next.has_value() ? next->first : std::numeric_limits<uint64_t>::max());
  return count;
}

}  // namespace tb::devcluster
