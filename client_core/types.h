// TigerBeetle 0.17.x data types, byte for byte as they travel on the wire (PROTOCOL.md §12).
//
// Every structure is trivially copyable, has no implicit padding and is checked against the
// documented size and field offsets at compile time, so an event buffer can be read with
// memcpy into these types and written back unchanged.
//
//   tb::Account account{};
//   account.id = 1; account.ledger = 1; account.code = 1;
//   std::memcpy(buffer, &account, sizeof(account));
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "client_core/u128.h"

namespace tb {

// ---- Flags (bit 0 is the least significant bit) --------------------------------------------

namespace account_flags {
inline constexpr uint16_t kLinked = 1 << 0;
inline constexpr uint16_t kDebitsMustNotExceedCredits = 1 << 1;
inline constexpr uint16_t kCreditsMustNotExceedDebits = 1 << 2;
inline constexpr uint16_t kHistory = 1 << 3;
inline constexpr uint16_t kImported = 1 << 4;
inline constexpr uint16_t kClosed = 1 << 5;
inline constexpr uint16_t kAll = 0x3F;
}  // namespace account_flags

namespace transfer_flags {
inline constexpr uint16_t kLinked = 1 << 0;
inline constexpr uint16_t kPending = 1 << 1;
inline constexpr uint16_t kPostPendingTransfer = 1 << 2;
inline constexpr uint16_t kVoidPendingTransfer = 1 << 3;
inline constexpr uint16_t kBalancingDebit = 1 << 4;
inline constexpr uint16_t kBalancingCredit = 1 << 5;
inline constexpr uint16_t kClosingDebit = 1 << 6;
inline constexpr uint16_t kClosingCredit = 1 << 7;
inline constexpr uint16_t kImported = 1 << 8;
inline constexpr uint16_t kAll = 0x1FF;
}  // namespace transfer_flags

namespace account_filter_flags {
inline constexpr uint32_t kDebits = 1 << 0;
inline constexpr uint32_t kCredits = 1 << 1;
inline constexpr uint32_t kReversed = 1 << 2;
inline constexpr uint32_t kAll = 0x7;
}  // namespace account_filter_flags

namespace query_filter_flags {
inline constexpr uint32_t kReversed = 1 << 0;
inline constexpr uint32_t kAll = 0x1;
}  // namespace query_filter_flags

// ---- Events and results ----------------------------------------------------------------------

struct Account {
  u128 id;
  u128 debits_pending;
  u128 debits_posted;
  u128 credits_pending;
  u128 credits_posted;
  u128 user_data_128;
  uint64_t user_data_64;
  uint32_t user_data_32;
  uint32_t reserved;
  uint32_t ledger;
  uint16_t code;
  uint16_t flags;
  uint64_t timestamp;
};

struct Transfer {
  u128 id;
  u128 debit_account_id;
  u128 credit_account_id;
  u128 amount;
  u128 pending_id;
  u128 user_data_128;
  uint64_t user_data_64;
  uint32_t user_data_32;
  uint32_t timeout;  // Seconds.
  uint32_t ledger;
  uint16_t code;
  uint16_t flags;
  uint64_t timestamp;
};

struct AccountBalance {
  u128 debits_pending;
  u128 debits_posted;
  u128 credits_pending;
  u128 credits_posted;
  uint64_t timestamp;
  uint8_t reserved[56];
};

struct AccountFilter {
  u128 account_id;
  u128 user_data_128;  // 0 = no filter.
  uint64_t user_data_64;
  uint32_t user_data_32;
  uint16_t code;
  uint8_t reserved[58];
  uint64_t timestamp_min;  // Inclusive, 0 = none.
  uint64_t timestamp_max;  // Inclusive, 0 = none.
  uint32_t limit;
  uint32_t flags;
};

struct QueryFilter {
  u128 user_data_128;
  uint64_t user_data_64;
  uint32_t user_data_32;
  uint32_t ledger;
  uint16_t code;
  uint8_t reserved[6];
  uint64_t timestamp_min;
  uint64_t timestamp_max;
  uint32_t limit;
  uint32_t flags;
};

struct ChangeEventsFilter {
  uint64_t timestamp_min;
  uint64_t timestamp_max;
  uint32_t limit;
  uint8_t reserved[44];
};

enum class ChangeEventType : uint8_t {
  kSinglePhase = 0,
  kTwoPhasePending = 1,
  kTwoPhasePosted = 2,
  kTwoPhaseVoided = 3,
  kTwoPhaseExpired = 4,
};

struct ChangeEvent {
  u128 transfer_id;
  u128 transfer_amount;
  u128 transfer_pending_id;
  u128 transfer_user_data_128;
  uint64_t transfer_user_data_64;
  uint32_t transfer_user_data_32;
  uint32_t transfer_timeout;
  uint16_t transfer_code;
  uint16_t transfer_flags;
  uint32_t ledger;
  ChangeEventType type;
  uint8_t reserved[39];
  u128 debit_account_id;
  u128 debit_account_debits_pending;
  u128 debit_account_debits_posted;
  u128 debit_account_credits_pending;
  u128 debit_account_credits_posted;
  u128 debit_account_user_data_128;
  uint64_t debit_account_user_data_64;
  uint32_t debit_account_user_data_32;
  uint16_t debit_account_code;
  uint16_t debit_account_flags;
  u128 credit_account_id;
  u128 credit_account_debits_pending;
  u128 credit_account_debits_posted;
  u128 credit_account_credits_pending;
  u128 credit_account_credits_posted;
  u128 credit_account_user_data_128;
  uint64_t credit_account_user_data_64;
  uint32_t credit_account_user_data_32;
  uint16_t credit_account_code;
  uint16_t credit_account_flags;
  uint64_t timestamp;
  uint64_t transfer_timestamp;
  uint64_t debit_account_timestamp;
  uint64_t credit_account_timestamp;
};

// Dense create result (operations 146/147): one per event, in event order.
struct CreateResult {
  uint64_t timestamp;
  uint32_t status;  // CreateAccountStatus or CreateTransferStatus.
  uint32_t reserved;
};

// Sparse create result of the deprecated operations (129/130/138/139): failed events only.
struct SparseCreateResult {
  uint32_t index;
  uint32_t status;
};

// ---- Statuses (values never change; declaration order is precedence order) ------------------

enum class CreateAccountStatus : uint32_t {
  kDeprecatedOk = 0,
  kCreated = 0xFFFFFFFF,
  kLinkedEventFailed = 1,
  kLinkedEventChainOpen = 2,
  kImportedEventExpected = 22,
  kImportedEventNotExpected = 23,
  kTimestampMustBeZero = 3,
  kImportedEventTimestampOutOfRange = 24,
  kImportedEventTimestampMustNotAdvance = 25,
  kReservedField = 4,
  kReservedFlag = 5,
  kIdMustNotBeZero = 6,
  kIdMustNotBeIntMax = 7,
  kExistsWithDifferentFlags = 15,
  kExistsWithDifferentUserData128 = 16,
  kExistsWithDifferentUserData64 = 17,
  kExistsWithDifferentUserData32 = 18,
  kExistsWithDifferentLedger = 19,
  kExistsWithDifferentCode = 20,
  kExists = 21,
  kFlagsAreMutuallyExclusive = 8,
  kDebitsPendingMustBeZero = 9,
  kDebitsPostedMustBeZero = 10,
  kCreditsPendingMustBeZero = 11,
  kCreditsPostedMustBeZero = 12,
  kLedgerMustNotBeZero = 13,
  kCodeMustNotBeZero = 14,
  kImportedEventTimestampMustNotRegress = 26,
};

enum class CreateTransferStatus : uint32_t {
  kDeprecatedOk = 0,
  kCreated = 0xFFFFFFFF,
  kLinkedEventFailed = 1,
  kLinkedEventChainOpen = 2,
  kImportedEventExpected = 56,
  kImportedEventNotExpected = 57,
  kTimestampMustBeZero = 3,
  kImportedEventTimestampOutOfRange = 58,
  kImportedEventTimestampMustNotAdvance = 59,
  kReservedFlag = 4,
  kIdMustNotBeZero = 5,
  kIdMustNotBeIntMax = 6,
  kExistsWithDifferentFlags = 36,
  kExistsWithDifferentPendingId = 40,
  kExistsWithDifferentTimeout = 44,
  kExistsWithDifferentDebitAccountId = 37,
  kExistsWithDifferentCreditAccountId = 38,
  kExistsWithDifferentAmount = 39,
  kExistsWithDifferentUserData128 = 41,
  kExistsWithDifferentUserData64 = 42,
  kExistsWithDifferentUserData32 = 43,
  kExistsWithDifferentLedger = 67,
  kExistsWithDifferentCode = 45,
  kExists = 46,
  kIdAlreadyFailed = 68,
  kFlagsAreMutuallyExclusive = 7,
  kDebitAccountIdMustNotBeZero = 8,
  kDebitAccountIdMustNotBeIntMax = 9,
  kCreditAccountIdMustNotBeZero = 10,
  kCreditAccountIdMustNotBeIntMax = 11,
  kAccountsMustBeDifferent = 12,
  kPendingIdMustBeZero = 13,
  kPendingIdMustNotBeZero = 14,
  kPendingIdMustNotBeIntMax = 15,
  kPendingIdMustBeDifferent = 16,
  kTimeoutReservedForPendingTransfer = 17,
  kClosingTransferMustBePending = 64,
  kLedgerMustNotBeZero = 19,
  kCodeMustNotBeZero = 20,
  kDebitAccountNotFound = 21,
  kCreditAccountNotFound = 22,
  kAccountsMustHaveTheSameLedger = 23,
  kTransferMustHaveTheSameLedgerAsAccounts = 24,
  kPendingTransferNotFound = 25,
  kPendingTransferNotPending = 26,
  kPendingTransferHasDifferentDebitAccountId = 27,
  kPendingTransferHasDifferentCreditAccountId = 28,
  kPendingTransferHasDifferentLedger = 29,
  kPendingTransferHasDifferentCode = 30,
  kExceedsPendingTransferAmount = 31,
  kPendingTransferHasDifferentAmount = 32,
  kPendingTransferAlreadyPosted = 33,
  kPendingTransferAlreadyVoided = 34,
  kPendingTransferExpired = 35,
  kImportedEventTimestampMustNotRegress = 60,
  kImportedEventTimestampMustPostdateDebitAccount = 61,
  kImportedEventTimestampMustPostdateCreditAccount = 62,
  kImportedEventTimeoutMustBeZero = 63,
  kDebitAccountAlreadyClosed = 65,
  kCreditAccountAlreadyClosed = 66,
  kOverflowsDebitsPending = 47,
  kOverflowsCreditsPending = 48,
  kOverflowsDebitsPosted = 49,
  kOverflowsCreditsPosted = 50,
  kOverflowsDebits = 51,
  kOverflowsCredits = 52,
  kOverflowsTimeout = 53,
  kExceedsCredits = 54,
  kExceedsDebits = 55,
  kDeprecated18 = 18,
};

// Snake-case name exactly as TigerBeetle spells it ("linked_event_failed"), or "" if unknown.
const char* CreateAccountStatusName(uint32_t status);
const char* CreateTransferStatusName(uint32_t status);

// ---- Layout checks ---------------------------------------------------------------------------

#define TB_CHECK_LAYOUT(type, size)                                            \
  static_assert(sizeof(type) == (size), #type " has the wrong size");          \
  static_assert(std::is_trivially_copyable_v<type>, #type " must be copyable"); \
  static_assert(std::is_standard_layout_v<type>, #type " must be standard layout")

TB_CHECK_LAYOUT(Account, 128);
static_assert(offsetof(Account, id) == 0);
static_assert(offsetof(Account, debits_pending) == 16);
static_assert(offsetof(Account, debits_posted) == 32);
static_assert(offsetof(Account, credits_pending) == 48);
static_assert(offsetof(Account, credits_posted) == 64);
static_assert(offsetof(Account, user_data_128) == 80);
static_assert(offsetof(Account, user_data_64) == 96);
static_assert(offsetof(Account, user_data_32) == 104);
static_assert(offsetof(Account, reserved) == 108);
static_assert(offsetof(Account, ledger) == 112);
static_assert(offsetof(Account, code) == 116);
static_assert(offsetof(Account, flags) == 118);
static_assert(offsetof(Account, timestamp) == 120);

TB_CHECK_LAYOUT(Transfer, 128);
static_assert(offsetof(Transfer, id) == 0);
static_assert(offsetof(Transfer, debit_account_id) == 16);
static_assert(offsetof(Transfer, credit_account_id) == 32);
static_assert(offsetof(Transfer, amount) == 48);
static_assert(offsetof(Transfer, pending_id) == 64);
static_assert(offsetof(Transfer, user_data_128) == 80);
static_assert(offsetof(Transfer, user_data_64) == 96);
static_assert(offsetof(Transfer, user_data_32) == 104);
static_assert(offsetof(Transfer, timeout) == 108);
static_assert(offsetof(Transfer, ledger) == 112);
static_assert(offsetof(Transfer, code) == 116);
static_assert(offsetof(Transfer, flags) == 118);
static_assert(offsetof(Transfer, timestamp) == 120);

TB_CHECK_LAYOUT(AccountBalance, 128);
static_assert(offsetof(AccountBalance, credits_posted) == 48);
static_assert(offsetof(AccountBalance, timestamp) == 64);
static_assert(offsetof(AccountBalance, reserved) == 72);

TB_CHECK_LAYOUT(AccountFilter, 128);
static_assert(offsetof(AccountFilter, account_id) == 0);
static_assert(offsetof(AccountFilter, user_data_128) == 16);
static_assert(offsetof(AccountFilter, user_data_64) == 32);
static_assert(offsetof(AccountFilter, user_data_32) == 40);
static_assert(offsetof(AccountFilter, code) == 44);
static_assert(offsetof(AccountFilter, reserved) == 46);
static_assert(offsetof(AccountFilter, timestamp_min) == 104);
static_assert(offsetof(AccountFilter, timestamp_max) == 112);
static_assert(offsetof(AccountFilter, limit) == 120);
static_assert(offsetof(AccountFilter, flags) == 124);

TB_CHECK_LAYOUT(QueryFilter, 64);
static_assert(offsetof(QueryFilter, user_data_64) == 16);
static_assert(offsetof(QueryFilter, user_data_32) == 24);
static_assert(offsetof(QueryFilter, ledger) == 28);
static_assert(offsetof(QueryFilter, code) == 32);
static_assert(offsetof(QueryFilter, reserved) == 34);
static_assert(offsetof(QueryFilter, timestamp_min) == 40);
static_assert(offsetof(QueryFilter, timestamp_max) == 48);
static_assert(offsetof(QueryFilter, limit) == 56);
static_assert(offsetof(QueryFilter, flags) == 60);

TB_CHECK_LAYOUT(ChangeEventsFilter, 64);
static_assert(offsetof(ChangeEventsFilter, timestamp_max) == 8);
static_assert(offsetof(ChangeEventsFilter, limit) == 16);
static_assert(offsetof(ChangeEventsFilter, reserved) == 20);

TB_CHECK_LAYOUT(ChangeEvent, 384);
static_assert(offsetof(ChangeEvent, transfer_user_data_64) == 64);
static_assert(offsetof(ChangeEvent, transfer_user_data_32) == 72);
static_assert(offsetof(ChangeEvent, transfer_timeout) == 76);
static_assert(offsetof(ChangeEvent, transfer_code) == 80);
static_assert(offsetof(ChangeEvent, transfer_flags) == 82);
static_assert(offsetof(ChangeEvent, ledger) == 84);
static_assert(offsetof(ChangeEvent, type) == 88);
static_assert(offsetof(ChangeEvent, reserved) == 89);
static_assert(offsetof(ChangeEvent, debit_account_id) == 128);
static_assert(offsetof(ChangeEvent, debit_account_user_data_64) == 224);
static_assert(offsetof(ChangeEvent, debit_account_user_data_32) == 232);
static_assert(offsetof(ChangeEvent, debit_account_code) == 236);
static_assert(offsetof(ChangeEvent, debit_account_flags) == 238);
static_assert(offsetof(ChangeEvent, credit_account_id) == 240);
static_assert(offsetof(ChangeEvent, credit_account_user_data_64) == 336);
static_assert(offsetof(ChangeEvent, credit_account_user_data_32) == 344);
static_assert(offsetof(ChangeEvent, credit_account_code) == 348);
static_assert(offsetof(ChangeEvent, credit_account_flags) == 350);
static_assert(offsetof(ChangeEvent, timestamp) == 352);
static_assert(offsetof(ChangeEvent, transfer_timestamp) == 360);
static_assert(offsetof(ChangeEvent, debit_account_timestamp) == 368);
static_assert(offsetof(ChangeEvent, credit_account_timestamp) == 376);

TB_CHECK_LAYOUT(CreateResult, 16);
static_assert(offsetof(CreateResult, status) == 8);
TB_CHECK_LAYOUT(SparseCreateResult, 8);

#undef TB_CHECK_LAYOUT

}  // namespace tb
