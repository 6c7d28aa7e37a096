// get_change_events (STATE_MACHINE.md §15). Account events are of two kinds, both kept in
// timestamp order: one per created transfer (stored with the transfer) and one per expiry. The
// reply merges the two sequences.

#include <algorithm>

#include "client_core/bytes.h"
#include "devcluster/internal/query_range.h"
#include "devcluster/queries.h"

namespace tb::devcluster {
namespace {

using internal::TimestampRange;

void FillAccount(const Account& account, const AccountSnapshot& after, bool debit,
                 ChangeEvent& event) {
  const Balances& b = after.balances;
  if (debit) {
    event.debit_account_id = account.id;
    event.debit_account_debits_pending = b.debits_pending;
    event.debit_account_debits_posted = b.debits_posted;
    event.debit_account_credits_pending = b.credits_pending;
    event.debit_account_credits_posted = b.credits_posted;
    event.debit_account_user_data_128 = account.user_data_128;
    event.debit_account_user_data_64 = account.user_data_64;
    event.debit_account_user_data_32 = account.user_data_32;
    event.debit_account_code = account.code;
    event.debit_account_flags = after.flags;
    event.debit_account_timestamp = account.timestamp;
  } else {
    event.credit_account_id = account.id;
    event.credit_account_debits_pending = b.debits_pending;
    event.credit_account_debits_posted = b.debits_posted;
    event.credit_account_credits_pending = b.credits_pending;
    event.credit_account_credits_posted = b.credits_posted;
    event.credit_account_user_data_128 = account.user_data_128;
    event.credit_account_user_data_64 = account.user_data_64;
    event.credit_account_user_data_32 = account.user_data_32;
    event.credit_account_code = account.code;
    event.credit_account_flags = after.flags;
    event.credit_account_timestamp = account.timestamp;
  }
}

// `transfer` is the transfer the event created, or for an expiry the pending transfer.
ChangeEvent MakeEvent(const Database& db, const TransferRecord& transfer, ChangeEventType type,
                      uint64_t timestamp, const AccountSnapshot& debit_after,
                      const AccountSnapshot& credit_after) {
  const Transfer& t = transfer.transfer;
  ChangeEvent event{};
  event.transfer_id = t.id;
  event.transfer_amount = t.amount;
  event.transfer_pending_id = t.pending_id;
  event.transfer_user_data_128 = t.user_data_128;
  event.transfer_user_data_64 = t.user_data_64;
  event.transfer_user_data_32 = t.user_data_32;
  event.transfer_timeout = t.timeout;
  event.transfer_code = t.code;
  event.transfer_flags = t.flags;
  event.ledger = t.ledger;
  event.type = type;
  FillAccount(db.account(transfer.debit_account_index), debit_after, /*debit=*/true, event);
  FillAccount(db.account(transfer.credit_account_index), credit_after, /*debit=*/false, event);
  event.timestamp = timestamp;
  event.transfer_timestamp = t.timestamp;
  return event;
}

}  // namespace

uint32_t GetChangeEvents(const Database& db, const ChangeEventsFilter& filter,
                         uint32_t result_max, std::vector<uint8_t>& out) {
  if (!TimestampRange::Valid(filter.timestamp_min, filter.timestamp_max, filter.limit) ||
      !internal::AllZero(filter.reserved)) {
    return 0;
  }
  const TimestampRange range(filter.timestamp_min, filter.timestamp_max);
  const std::vector<TransferRecord>& transfers = db.transfers();
  const std::vector<ExpiryRecord>& expiries = db.expiries();
  auto transfer = std::lower_bound(
      transfers.begin(), transfers.end(), range.min,
      [](const TransferRecord& record, uint64_t value) { return record.transfer.timestamp < value; });
  auto expiry = std::lower_bound(
      expiries.begin(), expiries.end(), range.min,
      [](const ExpiryRecord& record, uint64_t value) { return record.timestamp < value; });

  const uint32_t limit = std::min(filter.limit, result_max);
  uint32_t count = 0;
  while (count < limit) {
    const bool transfer_left =
        transfer != transfers.end() && transfer->transfer.timestamp <= range.max;
    const bool expiry_left = expiry != expiries.end() && expiry->timestamp <= range.max;
    if (!transfer_left && !expiry_left) break;
    // An imported transfer may carry an expiry's timestamp (STATE_MACHINE.md §8, unconfirmed
    // upstream); the transfer is listed first then.
    if (transfer_left && (!expiry_left || transfer->transfer.timestamp <= expiry->timestamp)) {
      AppendStruct(&out, MakeEvent(db, *transfer, transfer->event_type, transfer->transfer.timestamp,
                            transfer->debit_after, transfer->credit_after));
      ++transfer;
    } else {
      AppendStruct(&out, MakeEvent(db, db.transfer(expiry->transfer_index),
                            ChangeEventType::kTwoPhaseExpired, expiry->timestamp,
                            expiry->debit_after, expiry->credit_after));
      ++expiry;
    }
    count++;
  }
  return count;
}

}  // namespace tb::devcluster
