// The dev cluster's in-memory database: accounts, transfers, their indexes, pending-transfer
// states, the expiry schedule and the failed-transfer-id set (STATE_MACHINE.md §1.10, §3.3).
//
// Every mutation goes through this class so that a linked chain can be undone: while a scope is
// open, each change records its inverse in an undo log, and RollbackScope() replays that log
// backwards (§6). The failed-id set and the pulse hint are deliberately outside the log.
//
//   Database db({.account_count_reserve = 1 << 20});
//   db.BeginScope();
//   uint32_t index = db.InsertAccount(account);
//   db.RollbackScope();  // The account is gone again.
//
// Objects of one kind are stored in creation order, which is also timestamp order (imported
// objects must postdate every object of their kind, and slots only grow), so queries by
// timestamp are binary searches and a rollback only ever pops the newest objects.
// Single-threaded: owned by the StateMachine that uses it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <utility>
#include <vector>

#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/hash/hash.h"
#include "client_core/types.h"
#include "client_core/u128.h"

namespace tb::devcluster {

inline constexpr uint64_t kTimestampMax = (uint64_t{1} << 63) - 1;
inline constexpr uint64_t kNanosecondsPerSecond = 1'000'000'000;
// Indexes are 32-bit: at most this many accounts and transfers (far beyond a dev cluster's use).
inline constexpr uint32_t kObjectCountMax = std::numeric_limits<uint32_t>::max() - 1;

// Resolution state of a pending transfer (TigerBeetle's TransferPendingStatus).
enum class PendingState : uint8_t {
  kNone = 0,     // Not a pending transfer.
  kPending = 1,  // Reserved, not resolved yet.
  kPosted = 2,   // Resolved by a post.
  kVoided = 3,   // Resolved by a void.
  kExpired = 4,  // Resolved by a pulse after its timeout.
};

struct Balances {
  u128 debits_pending;
  u128 debits_posted;
  u128 credits_pending;
  u128 credits_posted;
};

inline Balances BalancesOf(const Account& account) {
  return {account.debits_pending, account.debits_posted, account.credits_pending,
          account.credits_posted};
}

// What an account looked like right after a balance-changing event (§13, §15).
struct AccountSnapshot {
  Balances balances;
  uint16_t flags;
};

// A stored transfer plus the account event it produced (one per created transfer).
struct TransferRecord {
  Transfer transfer;
  AccountSnapshot debit_after;
  AccountSnapshot credit_after;
  uint32_t debit_account_index;
  uint32_t credit_account_index;
  ChangeEventType event_type;
  // Only meaningful for pending transfers (kPending .. kExpired); kNone otherwise.
  PendingState pending_state;
};

// The account event of an expiry, which creates no transfer (§9.4).
struct ExpiryRecord {
  uint64_t timestamp;
  uint32_t transfer_index;  // The pending transfer that expired.
  AccountSnapshot debit_after;
  AccountSnapshot credit_after;
};

struct DatabaseOptions {
  // Capacity reserved up front so that memory use is predictable; the containers may still grow.
  uint32_t account_count_reserve = 0;
  uint32_t transfer_count_reserve = 0;
};

struct U128Hash {
  size_t operator()(u128 value) const {
    return absl::Hash<std::pair<uint64_t, uint64_t>>{}({U128Low(value), U128High(value)});
  }
};

class Database {
 public:
  explicit Database(DatabaseOptions options);
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  // ---- Reads ----
  std::optional<uint32_t> FindAccount(u128 id) const;
  std::optional<uint32_t> FindTransfer(u128 id) const;
  const Account& account(uint32_t index) const { return accounts_[index]; }
  const TransferRecord& transfer(uint32_t index) const { return transfers_[index]; }
  size_t account_count() const { return accounts_.size(); }
  size_t transfer_count() const { return transfers_.size(); }
  const std::vector<Account>& accounts() const { return accounts_; }
  const std::vector<TransferRecord>& transfers() const { return transfers_; }
  const std::vector<ExpiryRecord>& expiries() const { return expiries_; }
  // Transfers that debit or credit the account, ascending by timestamp (indexes into transfers()).
  const std::vector<uint32_t>& account_transfers(uint32_t account_index) const {
    return account_transfers_[account_index];
  }
  // Largest timestamp of any account / transfer, 0 if there is none.
  uint64_t account_timestamp_max() const;
  uint64_t transfer_timestamp_max() const;
  bool AccountHasTimestamp(uint64_t timestamp) const;
  bool TransferHasTimestamp(uint64_t timestamp) const;
  bool TransferIdFailed(u128 id) const { return failed_transfer_ids_.contains(id); }

  // ---- Mutations (undoable while a scope is open) ----
  // `account.timestamp` must exceed every stored account's timestamp (asserted).
  uint32_t InsertAccount(const Account& account);
  // Same ordering rule; also indexes the transfer under both of its accounts.
  uint32_t InsertTransfer(const TransferRecord& record);
  void SetAccountState(uint32_t index, const Balances& balances, uint16_t flags);
  void SetPendingState(uint32_t transfer_index, PendingState state);
  void ScheduleExpiry(uint64_t expires_at, uint32_t transfer_index);
  void UnscheduleExpiry(uint64_t expires_at, uint32_t transfer_index);

  // ---- Not undoable ----
  // A transient failure burns a transfer id forever, even inside a rolled-back chain (§7.3).
  void AddFailedTransferId(u128 id) { failed_transfer_ids_.insert(id); }
  // Expiries run in pulses, never inside a scope.
  void AppendExpiry(const ExpiryRecord& record);

  // ---- Expiry schedule, ordered by (expires_at, pending transfer timestamp) ----
  // The earliest scheduled entry, if any.
  std::optional<std::pair<uint64_t, uint32_t>> EarliestExpiry() const;
  // Up to `count_max` entries with expires_at <= `timestamp`, earliest first.
  std::vector<std::pair<uint64_t, uint32_t>> DueExpiries(uint64_t timestamp,
                                                         uint32_t count_max) const;

  // When a pulse may be due (STATE_MACHINE.md §9.4; conformance README "Reference clock", H):
  // a pulse runs when pulse_hint() <= the current timestamp. Not rolled back with chains.
  uint64_t pulse_hint() const { return pulse_hint_; }
  void set_pulse_hint(uint64_t value) { pulse_hint_ = value; }

  // ---- Linked-chain scopes ----
  void BeginScope();
  void CommitScope();
  void RollbackScope();
  bool scope_open() const { return scope_open_; }

 private:
  enum class UndoKind : uint8_t {
    kAccountInserted,
    kTransferInserted,
    kAccountState,
    kPendingState,
    kExpiryScheduled,
    kExpiryUnscheduled,
  };
  struct UndoEntry {
    UndoKind kind;
    PendingState pending_state;
    uint16_t flags;
    uint32_t index;
    uint64_t expires_at;
    Balances balances;
  };

  void Record(const UndoEntry& entry) {
    if (scope_open_) undo_.push_back(entry);
  }
  void Undo(const UndoEntry& entry);

  std::vector<Account> accounts_;
  absl::flat_hash_map<u128, uint32_t, U128Hash> account_by_id_;
  std::vector<std::vector<uint32_t>> account_transfers_;
  std::vector<TransferRecord> transfers_;
  absl::flat_hash_map<u128, uint32_t, U128Hash> transfer_by_id_;
  absl::flat_hash_set<u128, U128Hash> failed_transfer_ids_;
  std::vector<ExpiryRecord> expiries_;
  absl::btree_set<std::pair<uint64_t, uint32_t>> expiry_schedule_;
  std::vector<UndoEntry> undo_;
  bool scope_open_ = false;
  uint64_t pulse_hint_ = std::numeric_limits<uint64_t>::max();
};

}  // namespace tb::devcluster
