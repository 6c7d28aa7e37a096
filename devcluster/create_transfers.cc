// create_transfers: STATE_MACHINE.md §5 (checks and effects), §7.2 (idempotency), §7.3 (failed
// ids) and §9 (two-phase transfers). Each function below is one stretch of the documented check
// order; the first status that applies wins.

#include <algorithm>

#include "client_core/types.h"
#include "devcluster/create.h"
#include "devcluster/database.h"
#include "devcluster/internal/linked_chain.h"

namespace tb::devcluster {
namespace {

using Status = CreateTransferStatus;
using internal::Outcome;
namespace tf = transfer_flags;

constexpr uint32_t Code(Status status) { return static_cast<uint32_t>(status); }

Outcome Fail(Status status) { return {.status = Code(status)}; }

bool Has(uint16_t flags, uint16_t flag) { return (flags & flag) != 0; }

// a + b > kU128Max, without overflowing.
bool Overflows(u128 a, u128 b) { return a > kU128Max - b; }
// a + b + c > kU128Max.
bool Overflows(u128 a, u128 b, u128 c) { return Overflows(b, c) || Overflows(a, b + c); }

// §7.3: these depend on the database's state, so the id is burned when one occurs.
bool IsTransient(Status status) {
  switch (status) {
    case Status::kDebitAccountNotFound:
    case Status::kCreditAccountNotFound:
    case Status::kPendingTransferNotFound:
    case Status::kExceedsCredits:
    case Status::kExceedsDebits:
    case Status::kDebitAccountAlreadyClosed:
    case Status::kCreditAccountAlreadyClosed:
      return true;
    default:
      return false;
  }
}

// §7.2 step 4: retry of a post/void. `P` is the pending transfer it resolved.
Outcome CompareExistingPostVoid(const Transfer& t, const Transfer& e, const Transfer& p) {
  if (t.debit_account_id != 0 && t.debit_account_id != e.debit_account_id) {
    return Fail(Status::kExistsWithDifferentDebitAccountId);
  }
  if (t.credit_account_id != 0 && t.credit_account_id != e.credit_account_id) {
    return Fail(Status::kExistsWithDifferentCreditAccountId);
  }
  const bool full = Has(t.flags, tf::kVoidPendingTransfer) ? t.amount == 0 : t.amount == kU128Max;
  if (full ? e.amount != p.amount : t.amount != e.amount) {
    return Fail(Status::kExistsWithDifferentAmount);
  }
  if (t.user_data_128 == 0 ? e.user_data_128 != p.user_data_128
                           : t.user_data_128 != e.user_data_128) {
    return Fail(Status::kExistsWithDifferentUserData128);
  }
  if (t.user_data_64 == 0 ? e.user_data_64 != p.user_data_64 : t.user_data_64 != e.user_data_64) {
    return Fail(Status::kExistsWithDifferentUserData64);
  }
  if (t.user_data_32 == 0 ? e.user_data_32 != p.user_data_32 : t.user_data_32 != e.user_data_32) {
    return Fail(Status::kExistsWithDifferentUserData32);
  }
  if (t.ledger != 0 && t.ledger != e.ledger) return Fail(Status::kExistsWithDifferentLedger);
  if (t.code != 0 && t.code != e.code) return Fail(Status::kExistsWithDifferentCode);
  return {.status = Code(Status::kExists), .timestamp = e.timestamp};
}

// §7.2: a transfer with this id exists (`e`).
Outcome CompareExisting(const Database& db, const Transfer& t, const Transfer& e) {
  if (t.flags != e.flags) return Fail(Status::kExistsWithDifferentFlags);
  if (t.pending_id != e.pending_id) return Fail(Status::kExistsWithDifferentPendingId);
  if (t.timeout != e.timeout) return Fail(Status::kExistsWithDifferentTimeout);
  if (Has(t.flags, tf::kPostPendingTransfer | tf::kVoidPendingTransfer)) {
    const std::optional<uint32_t> pending = db.FindTransfer(t.pending_id);
    TB_ASSERT(pending.has_value(), "a stored post/void references a stored pending transfer");
    return CompareExistingPostVoid(t, e, db.transfer(*pending).transfer);
  }
  if (t.debit_account_id != e.debit_account_id) {
    return Fail(Status::kExistsWithDifferentDebitAccountId);
  }
  if (t.credit_account_id != e.credit_account_id) {
    return Fail(Status::kExistsWithDifferentCreditAccountId);
  }
  const bool balancing = Has(t.flags, tf::kBalancingDebit | tf::kBalancingCredit);
  if (balancing ? t.amount < e.amount : t.amount != e.amount) {
    return Fail(Status::kExistsWithDifferentAmount);
  }
  if (t.user_data_128 != e.user_data_128) return Fail(Status::kExistsWithDifferentUserData128);
  if (t.user_data_64 != e.user_data_64) return Fail(Status::kExistsWithDifferentUserData64);
  if (t.user_data_32 != e.user_data_32) return Fail(Status::kExistsWithDifferentUserData32);
  if (t.ledger != e.ledger) return Fail(Status::kExistsWithDifferentLedger);
  if (t.code != e.code) return Fail(Status::kExistsWithDifferentCode);
  return {.status = Code(Status::kExists), .timestamp = e.timestamp};
}

// §5.1 steps 10–13: checks that need no stored state.
std::optional<Status> ValidateSinglePhase(const Transfer& t) {
  if (t.debit_account_id == 0) return Status::kDebitAccountIdMustNotBeZero;
  if (t.debit_account_id == kU128Max) return Status::kDebitAccountIdMustNotBeIntMax;
  if (t.credit_account_id == 0) return Status::kCreditAccountIdMustNotBeZero;
  if (t.credit_account_id == kU128Max) return Status::kCreditAccountIdMustNotBeIntMax;
  if (t.debit_account_id == t.credit_account_id) return Status::kAccountsMustBeDifferent;
  if (t.pending_id != 0) return Status::kPendingIdMustBeZero;
  if (!Has(t.flags, tf::kPending)) {
    if (t.timeout != 0) return Status::kTimeoutReservedForPendingTransfer;
    if (Has(t.flags, tf::kClosingDebit | tf::kClosingCredit)) {
      return Status::kClosingTransferMustBePending;
    }
  }
  if (t.ledger == 0) return Status::kLedgerMustNotBeZero;
  if (t.code == 0) return Status::kCodeMustNotBeZero;
  return std::nullopt;
}

// §5.1 step 16.
std::optional<Status> ValidateImportedSinglePhase(const Database& db, const Transfer& t,
                                                  const Account& dr, const Account& cr) {
  if (t.timestamp <= db.transfer_timestamp_max() || db.AccountHasTimestamp(t.timestamp)) {
    return Status::kImportedEventTimestampMustNotRegress;
  }
  if (t.timestamp <= dr.timestamp) return Status::kImportedEventTimestampMustPostdateDebitAccount;
  if (t.timestamp <= cr.timestamp) return Status::kImportedEventTimestampMustPostdateCreditAccount;
  if (t.timeout != 0) return Status::kImportedEventTimeoutMustBeZero;
  return std::nullopt;
}

// §5.2: the amount a balancing transfer actually moves.
u128 ClampedAmount(const Transfer& t, const Account& dr, const Account& cr) {
  u128 amount = t.amount;
  if (Has(t.flags, tf::kBalancingDebit)) {
    const u128 debits = dr.debits_posted + dr.debits_pending;
    amount = std::min(amount, dr.credits_posted > debits ? dr.credits_posted - debits : 0);
  }
  if (Has(t.flags, tf::kBalancingCredit)) {
    const u128 credits = cr.credits_posted + cr.credits_pending;
    amount = std::min(amount, cr.debits_posted > credits ? cr.debits_posted - credits : 0);
  }
  return amount;
}

// §5.1 steps 19–24.
std::optional<Status> CheckBalances(const Transfer& t, u128 amount, uint64_t timestamp,
                                    const Account& dr, const Account& cr) {
  if (Has(t.flags, tf::kPending)) {
    if (Overflows(amount, dr.debits_pending)) return Status::kOverflowsDebitsPending;
    if (Overflows(amount, cr.credits_pending)) return Status::kOverflowsCreditsPending;
  }
  if (Overflows(amount, dr.debits_posted)) return Status::kOverflowsDebitsPosted;
  if (Overflows(amount, cr.credits_posted)) return Status::kOverflowsCreditsPosted;
  if (Overflows(amount, dr.debits_pending, dr.debits_posted)) return Status::kOverflowsDebits;
  if (Overflows(amount, cr.credits_pending, cr.credits_posted)) return Status::kOverflowsCredits;
  // timeout · 10^9 < 2^62 and timestamp <= 2^63 − 1, so the sum fits in 64 bits.
  if (timestamp + uint64_t{t.timeout} * kNanosecondsPerSecond > kTimestampMax) {
    return Status::kOverflowsTimeout;
  }
  if (Has(dr.flags, account_flags::kDebitsMustNotExceedCredits) &&
      dr.debits_pending + dr.debits_posted + amount > dr.credits_posted) {
    return Status::kExceedsCredits;
  }
  if (Has(cr.flags, account_flags::kCreditsMustNotExceedDebits) &&
      cr.credits_pending + cr.credits_posted + amount > cr.debits_posted) {
    return Status::kExceedsDebits;
  }
  return std::nullopt;
}

AccountSnapshot SnapshotOf(const Account& account) {
  return {.balances = BalancesOf(account), .flags = account.flags};
}

// §5.4 for single-phase and pending transfers.
Outcome ApplySinglePhase(Database& db, const Transfer& t, u128 amount, uint64_t timestamp,
                         uint32_t dr_index, uint32_t cr_index) {
  const bool pending = Has(t.flags, tf::kPending);
  Account dr = db.account(dr_index);
  Account cr = db.account(cr_index);
  if (pending) {
    dr.debits_pending += amount;
    cr.credits_pending += amount;
  } else {
    dr.debits_posted += amount;
    cr.credits_posted += amount;
  }
  if (Has(t.flags, tf::kClosingDebit)) dr.flags |= account_flags::kClosed;
  if (Has(t.flags, tf::kClosingCredit)) cr.flags |= account_flags::kClosed;
  db.SetAccountState(dr_index, BalancesOf(dr), dr.flags);
  db.SetAccountState(cr_index, BalancesOf(cr), cr.flags);

  TransferRecord record{};
  record.transfer = t;
  record.transfer.amount = amount;
  record.transfer.timestamp = timestamp;
  record.debit_after = SnapshotOf(dr);
  record.credit_after = SnapshotOf(cr);
  record.debit_account_index = dr_index;
  record.credit_account_index = cr_index;
  record.event_type = pending ? ChangeEventType::kTwoPhasePending : ChangeEventType::kSinglePhase;
  record.pending_state = pending ? PendingState::kPending : PendingState::kNone;
  const uint32_t index = db.InsertTransfer(record);

  if (t.timeout > 0) {
    TB_ASSERT(pending && !Has(t.flags, tf::kImported));
    const uint64_t expires_at = timestamp + uint64_t{t.timeout} * kNanosecondsPerSecond;
    db.ScheduleExpiry(expires_at, index);
    db.set_pulse_hint(std::min(db.pulse_hint(), expires_at));
  }
  return {.status = Code(Status::kCreated), .timestamp = timestamp};
}

// §5.1 steps 10–25 for a transfer that is neither a post nor a void.
Outcome CreateSinglePhase(Database& db, const Transfer& t, uint64_t slot) {
  if (std::optional<Status> status = ValidateSinglePhase(t)) return Fail(*status);
  const std::optional<uint32_t> dr_index = db.FindAccount(t.debit_account_id);
  if (!dr_index) return Fail(Status::kDebitAccountNotFound);
  const std::optional<uint32_t> cr_index = db.FindAccount(t.credit_account_id);
  if (!cr_index) return Fail(Status::kCreditAccountNotFound);
  const Account& dr = db.account(*dr_index);
  const Account& cr = db.account(*cr_index);
  if (dr.ledger != cr.ledger) return Fail(Status::kAccountsMustHaveTheSameLedger);
  if (t.ledger != dr.ledger) return Fail(Status::kTransferMustHaveTheSameLedgerAsAccounts);

  uint64_t timestamp = slot;
  if (Has(t.flags, tf::kImported)) {
    if (std::optional<Status> status = ValidateImportedSinglePhase(db, t, dr, cr)) {
      return Fail(*status);
    }
    timestamp = t.timestamp;
  }
  if (Has(dr.flags, account_flags::kClosed)) return Fail(Status::kDebitAccountAlreadyClosed);
  if (Has(cr.flags, account_flags::kClosed)) return Fail(Status::kCreditAccountAlreadyClosed);
  const u128 amount = ClampedAmount(t, dr, cr);
  if (std::optional<Status> status = CheckBalances(t, amount, timestamp, dr, cr)) {
    return Fail(*status);
  }
  return ApplySinglePhase(db, t, amount, timestamp, *dr_index, *cr_index);
}

// §5.3 steps 1–3.
std::optional<Status> ValidatePostVoid(const Transfer& t) {
  if (Has(t.flags, tf::kPostPendingTransfer) && Has(t.flags, tf::kVoidPendingTransfer)) {
    return Status::kFlagsAreMutuallyExclusive;
  }
  for (uint16_t flag : {tf::kPending, tf::kBalancingDebit, tf::kBalancingCredit, tf::kClosingDebit,
                        tf::kClosingCredit}) {
    if (Has(t.flags, flag)) return Status::kFlagsAreMutuallyExclusive;
  }
  if (t.pending_id == 0) return Status::kPendingIdMustNotBeZero;
  if (t.pending_id == kU128Max) return Status::kPendingIdMustNotBeIntMax;
  if (t.pending_id == t.id) return Status::kPendingIdMustBeDifferent;
  if (t.timeout != 0) return Status::kTimeoutReservedForPendingTransfer;
  return std::nullopt;
}

// §5.3 steps 5–9, against the pending transfer `p`. Sets `*amount` to the requested amount.
std::optional<Status> ValidateAgainstPending(const Transfer& t, const TransferRecord& p_record,
                                             uint64_t slot, u128* amount) {
  const Transfer& p = p_record.transfer;
  if (!Has(p.flags, tf::kPending)) return Status::kPendingTransferNotPending;
  if (t.debit_account_id != 0 && t.debit_account_id != p.debit_account_id) {
    return Status::kPendingTransferHasDifferentDebitAccountId;
  }
  if (t.credit_account_id != 0 && t.credit_account_id != p.credit_account_id) {
    return Status::kPendingTransferHasDifferentCreditAccountId;
  }
  if (t.ledger != 0 && t.ledger != p.ledger) return Status::kPendingTransferHasDifferentLedger;
  if (t.code != 0 && t.code != p.code) return Status::kPendingTransferHasDifferentCode;
  const bool is_void = Has(t.flags, tf::kVoidPendingTransfer);
  if (is_void) {
    *amount = t.amount == 0 ? p.amount : t.amount;
  } else {
    *amount = t.amount == kU128Max ? p.amount : t.amount;
  }
  if (*amount > p.amount) return Status::kExceedsPendingTransferAmount;
  if (is_void && *amount < p.amount) return Status::kPendingTransferHasDifferentAmount;
  switch (p_record.pending_state) {
    case PendingState::kPosted:
      return Status::kPendingTransferAlreadyPosted;
    case PendingState::kVoided:
      return Status::kPendingTransferAlreadyVoided;
    case PendingState::kExpired:
      return Status::kPendingTransferExpired;
    case PendingState::kPending:
      break;
    case PendingState::kNone:
      TB_ASSERT(false, "a pending transfer always has a pending state");
  }
  if (p.timeout != 0 && p.timestamp + uint64_t{p.timeout} * kNanosecondsPerSecond <= slot) {
    return Status::kPendingTransferExpired;
  }
  return std::nullopt;
}

// §5.4 for posts and voids.
Outcome ApplyPostVoid(Database& db, const Transfer& t, uint32_t p_index, u128 amount,
                      uint64_t timestamp) {
  const TransferRecord p_record = db.transfer(p_index);
  const Transfer& p = p_record.transfer;
  const bool is_post = Has(t.flags, tf::kPostPendingTransfer);
  Account dr = db.account(p_record.debit_account_index);
  Account cr = db.account(p_record.credit_account_index);
  dr.debits_pending -= p.amount;
  cr.credits_pending -= p.amount;
  if (is_post) {
    dr.debits_posted += amount;
    cr.credits_posted += amount;
  } else {
    if (Has(p.flags, tf::kClosingDebit)) dr.flags &= ~account_flags::kClosed;
    if (Has(p.flags, tf::kClosingCredit)) cr.flags &= ~account_flags::kClosed;
  }
  db.SetAccountState(p_record.debit_account_index, BalancesOf(dr), dr.flags);
  db.SetAccountState(p_record.credit_account_index, BalancesOf(cr), cr.flags);
  db.SetPendingState(p_index, is_post ? PendingState::kPosted : PendingState::kVoided);
  if (p.timeout != 0) {
    const uint64_t expires_at = p.timestamp + uint64_t{p.timeout} * kNanosecondsPerSecond;
    db.UnscheduleExpiry(expires_at, p_index);
    // The replica re-checks its schedule at the next opportunity (README "Reference clock").
    if (db.pulse_hint() == expires_at) db.set_pulse_hint(1);
  }

  TransferRecord record{};
  record.transfer = t;
  record.transfer.debit_account_id = p.debit_account_id;
  record.transfer.credit_account_id = p.credit_account_id;
  record.transfer.amount = amount;
  if (t.user_data_128 == 0) record.transfer.user_data_128 = p.user_data_128;
  if (t.user_data_64 == 0) record.transfer.user_data_64 = p.user_data_64;
  if (t.user_data_32 == 0) record.transfer.user_data_32 = p.user_data_32;
  record.transfer.timeout = 0;
  record.transfer.ledger = p.ledger;
  record.transfer.code = p.code;
  record.transfer.timestamp = timestamp;
  record.debit_after = SnapshotOf(dr);
  record.credit_after = SnapshotOf(cr);
  record.debit_account_index = p_record.debit_account_index;
  record.credit_account_index = p_record.credit_account_index;
  record.event_type = is_post ? ChangeEventType::kTwoPhasePosted : ChangeEventType::kTwoPhaseVoided;
  record.pending_state = PendingState::kNone;
  db.InsertTransfer(record);
  return {.status = Code(Status::kCreated), .timestamp = timestamp};
}

// §5.3.
Outcome CreatePostVoid(Database& db, const Transfer& t, uint64_t slot) {
  if (std::optional<Status> status = ValidatePostVoid(t)) return Fail(*status);
  const std::optional<uint32_t> p_index = db.FindTransfer(t.pending_id);
  if (!p_index) return Fail(Status::kPendingTransferNotFound);
  const TransferRecord& p_record = db.transfer(*p_index);
  u128 amount = 0;
  if (std::optional<Status> status = ValidateAgainstPending(t, p_record, slot, &amount)) {
    return Fail(*status);
  }
  uint64_t timestamp = slot;
  if (Has(t.flags, tf::kImported)) {
    if (t.timestamp <= db.transfer_timestamp_max() || db.AccountHasTimestamp(t.timestamp)) {
      return Fail(Status::kImportedEventTimestampMustNotRegress);
    }
    timestamp = t.timestamp;
  }
  if (Has(t.flags, tf::kPostPendingTransfer)) {
    if (Has(db.account(p_record.debit_account_index).flags, account_flags::kClosed)) {
      return Fail(Status::kDebitAccountAlreadyClosed);
    }
    if (Has(db.account(p_record.credit_account_index).flags, account_flags::kClosed)) {
      return Fail(Status::kCreditAccountAlreadyClosed);
    }
  }
  return ApplyPostVoid(db, t, *p_index, amount, timestamp);
}

// §5.1 steps 5–9, then one of the two paths.
Outcome CreateTransfer(Database& db, const Transfer& t, uint64_t slot) {
  if ((t.flags & ~tf::kAll) != 0) return Fail(Status::kReservedFlag);
  if (t.id == 0) return Fail(Status::kIdMustNotBeZero);
  if (t.id == kU128Max) return Fail(Status::kIdMustNotBeIntMax);
  if (std::optional<uint32_t> existing = db.FindTransfer(t.id)) {
    return CompareExisting(db, t, db.transfer(*existing).transfer);
  }
  if (db.TransferIdFailed(t.id)) return Fail(Status::kIdAlreadyFailed);
  const Outcome outcome = Has(t.flags, tf::kPostPendingTransfer | tf::kVoidPendingTransfer)
                              ? CreatePostVoid(db, t, slot)
                              : CreateSinglePhase(db, t, slot);
  if (IsTransient(static_cast<Status>(outcome.status))) db.AddFailedTransferId(t.id);
  return outcome;
}

using TransferKind =
    internal::CreateKind<Transfer, Status, tf::kLinked, tf::kImported, &CreateTransfer>;

}  // namespace

void CreateTransfers(Database& db, std::span<const uint8_t> events, uint64_t batch_last_slot,
                     std::vector<CreateResult>& results) {
  internal::ExecuteCreateBatch<TransferKind>(db, events, batch_last_slot, results);
}

}  // namespace tb::devcluster
