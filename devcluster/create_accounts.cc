// create_accounts: the account checks of STATE_MACHINE.md §4.1 steps 5–15 and §4.2.

#include "client_core/types.h"
#include "devcluster/create.h"
#include "devcluster/database.h"
#include "devcluster/internal/linked_chain.h"

namespace tb::devcluster {
namespace {

using Status = CreateAccountStatus;
using internal::Outcome;

constexpr uint32_t Code(Status status) { return static_cast<uint32_t>(status); }

Outcome Fail(Status status) { return {.status = Code(status)}; }

// §4.1 step 9: idempotency against the stored account, field by field.
Outcome CompareExisting(const Account& event, const Account& existing) {
  if (event.flags != existing.flags) return Fail(Status::kExistsWithDifferentFlags);
  if (event.user_data_128 != existing.user_data_128) {
    return Fail(Status::kExistsWithDifferentUserData128);
  }
  if (event.user_data_64 != existing.user_data_64) {
    return Fail(Status::kExistsWithDifferentUserData64);
  }
  if (event.user_data_32 != existing.user_data_32) {
    return Fail(Status::kExistsWithDifferentUserData32);
  }
  if (event.ledger != existing.ledger) return Fail(Status::kExistsWithDifferentLedger);
  if (event.code != existing.code) return Fail(Status::kExistsWithDifferentCode);
  return {.status = Code(Status::kExists), .timestamp = existing.timestamp};
}

Outcome CreateAccount(Database& db, const Account& event, uint64_t slot) {
  if (event.reserved != 0) return Fail(Status::kReservedField);
  if ((event.flags & ~account_flags::kAll) != 0) return Fail(Status::kReservedFlag);
  if (event.id == 0) return Fail(Status::kIdMustNotBeZero);
  if (event.id == kU128Max) return Fail(Status::kIdMustNotBeIntMax);
  if (std::optional<uint32_t> existing = db.FindAccount(event.id)) {
    return CompareExisting(event, db.account(*existing));
  }
  if ((event.flags & account_flags::kDebitsMustNotExceedCredits) != 0 &&
      (event.flags & account_flags::kCreditsMustNotExceedDebits) != 0) {
    return Fail(Status::kFlagsAreMutuallyExclusive);
  }
  if (event.debits_pending != 0) return Fail(Status::kDebitsPendingMustBeZero);
  if (event.debits_posted != 0) return Fail(Status::kDebitsPostedMustBeZero);
  if (event.credits_pending != 0) return Fail(Status::kCreditsPendingMustBeZero);
  if (event.credits_posted != 0) return Fail(Status::kCreditsPostedMustBeZero);
  if (event.ledger == 0) return Fail(Status::kLedgerMustNotBeZero);
  if (event.code == 0) return Fail(Status::kCodeMustNotBeZero);

  uint64_t timestamp = slot;
  if ((event.flags & account_flags::kImported) != 0) {
    if (event.timestamp <= db.account_timestamp_max() ||
        db.TransferHasTimestamp(event.timestamp)) {
      return Fail(Status::kImportedEventTimestampMustNotRegress);
    }
    timestamp = event.timestamp;
  }

  Account stored = event;
  stored.debits_pending = 0;
  stored.debits_posted = 0;
  stored.credits_pending = 0;
  stored.credits_posted = 0;
  stored.reserved = 0;
  stored.timestamp = timestamp;
  db.InsertAccount(stored);
  return {.status = Code(Status::kCreated), .timestamp = timestamp};
}

using AccountKind = internal::CreateKind<Account, Status, account_flags::kLinked,
                                         account_flags::kImported, &CreateAccount>;

}  // namespace

void CreateAccounts(Database& db, std::span<const uint8_t> events, uint64_t batch_last_slot,
                    std::vector<CreateResult>& results) {
  internal::ExecuteCreateBatch<AccountKind>(db, events, batch_last_slot, results);
}

}  // namespace tb::devcluster
