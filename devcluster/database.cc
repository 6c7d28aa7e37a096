#include "devcluster/database.h"

#include <algorithm>

#include "client_core/assert.h"

namespace tb::devcluster {

Database::Database(DatabaseOptions options) {
  accounts_.reserve(options.account_count_reserve);
  account_by_id_.reserve(options.account_count_reserve);
  account_transfers_.reserve(options.account_count_reserve);
  transfers_.reserve(options.transfer_count_reserve);
  transfer_by_id_.reserve(options.transfer_count_reserve);
}

std::optional<uint32_t> Database::FindAccount(u128 id) const {
  auto it = account_by_id_.find(id);
  if (it == account_by_id_.end()) return std::nullopt;
  return it->second;
}

std::optional<uint32_t> Database::FindTransfer(u128 id) const {
  auto it = transfer_by_id_.find(id);
  if (it == transfer_by_id_.end()) return std::nullopt;
  return it->second;
}

uint64_t Database::account_timestamp_max() const {
  return accounts_.empty() ? 0 : accounts_.back().timestamp;
}

uint64_t Database::transfer_timestamp_max() const {
  return transfers_.empty() ? 0 : transfers_.back().transfer.timestamp;
}

bool Database::AccountHasTimestamp(uint64_t timestamp) const {
  auto it = std::lower_bound(
      accounts_.begin(), accounts_.end(), timestamp,
      [](const Account& account, uint64_t value) { return account.timestamp < value; });
  return it != accounts_.end() && it->timestamp == timestamp;
}

bool Database::TransferHasTimestamp(uint64_t timestamp) const {
  auto it = std::lower_bound(transfers_.begin(), transfers_.end(), timestamp,
                             [](const TransferRecord& record, uint64_t value) {
                               return record.transfer.timestamp < value;
                             });
  return it != transfers_.end() && it->transfer.timestamp == timestamp;
}

uint32_t Database::InsertAccount(const Account& account) {
  TB_ASSERT(accounts_.size() < kObjectCountMax);
  TB_ASSERT(account.timestamp > account_timestamp_max(), "accounts are stored in timestamp order");
  const auto index = static_cast<uint32_t>(accounts_.size());
  const bool inserted = account_by_id_.emplace(account.id, index).second;
  TB_ASSERT(inserted, "account ids are unique");
  accounts_.push_back(account);
  account_transfers_.emplace_back();
  Record({.kind = UndoKind::kAccountInserted, .index = index});
  return index;
}

uint32_t Database::InsertTransfer(const TransferRecord& record) {
  TB_ASSERT(transfers_.size() < kObjectCountMax);
  TB_ASSERT(record.transfer.timestamp > transfer_timestamp_max(),
            "transfers are stored in timestamp order");
  TB_ASSERT(record.debit_account_index != record.credit_account_index);
  const auto index = static_cast<uint32_t>(transfers_.size());
  const bool inserted = transfer_by_id_.emplace(record.transfer.id, index).second;
  TB_ASSERT(inserted, "transfer ids are unique");
  transfers_.push_back(record);
  account_transfers_[record.debit_account_index].push_back(index);
  account_transfers_[record.credit_account_index].push_back(index);
  Record({.kind = UndoKind::kTransferInserted, .index = index});
  return index;
}

void Database::SetAccountState(uint32_t index, const Balances& balances, uint16_t flags) {
  Account& account = accounts_[index];
  Record({.kind = UndoKind::kAccountState,
          .flags = account.flags,
          .index = index,
          .balances = BalancesOf(account)});
  account.debits_pending = balances.debits_pending;
  account.debits_posted = balances.debits_posted;
  account.credits_pending = balances.credits_pending;
  account.credits_posted = balances.credits_posted;
  account.flags = flags;
}

void Database::SetPendingState(uint32_t transfer_index, PendingState state) {
  TransferRecord& record = transfers_[transfer_index];
  Record({.kind = UndoKind::kPendingState,
          .pending_state = record.pending_state,
          .index = transfer_index});
  record.pending_state = state;
}

void Database::ScheduleExpiry(uint64_t expires_at, uint32_t transfer_index) {
  const bool inserted = expiry_schedule_.insert({expires_at, transfer_index}).second;
  TB_ASSERT(inserted);
  Record({.kind = UndoKind::kExpiryScheduled, .index = transfer_index, .expires_at = expires_at});
}

void Database::UnscheduleExpiry(uint64_t expires_at, uint32_t transfer_index) {
  const size_t erased = expiry_schedule_.erase({expires_at, transfer_index});
  TB_ASSERT(erased == 1);
  Record({.kind = UndoKind::kExpiryUnscheduled, .index = transfer_index, .expires_at = expires_at});
}

void Database::AppendExpiry(const ExpiryRecord& record) {
  TB_ASSERT(!scope_open_, "expiries run in pulses, outside linked chains");
  TB_ASSERT(expiries_.empty() || expiries_.back().timestamp < record.timestamp);
  expiries_.push_back(record);
}

std::optional<std::pair<uint64_t, uint32_t>> Database::EarliestExpiry() const {
  if (expiry_schedule_.empty()) return std::nullopt;
  return *expiry_schedule_.begin();
}

std::vector<std::pair<uint64_t, uint32_t>> Database::DueExpiries(uint64_t timestamp,
                                                                   uint32_t count_max) const {
  std::vector<std::pair<uint64_t, uint32_t>> due;
  for (const std::pair<uint64_t, uint32_t>& entry : expiry_schedule_) {
    if (due.size() == count_max || entry.first > timestamp) break;
    due.push_back(entry);
  }
  return due;
}

void Database::BeginScope() {
  TB_ASSERT(!scope_open_);
  TB_ASSERT(undo_.empty());
  scope_open_ = true;
}

void Database::CommitScope() {
  TB_ASSERT(scope_open_);
  undo_.clear();
  scope_open_ = false;
}

void Database::RollbackScope() {
  TB_ASSERT(scope_open_);
  for (auto it = undo_.rbegin(); it != undo_.rend(); ++it) Undo(*it);
  undo_.clear();
  scope_open_ = false;
}

void Database::Undo(const UndoEntry& entry) {
  switch (entry.kind) {
    case UndoKind::kAccountInserted: {
      TB_ASSERT(entry.index + 1 == accounts_.size(), "inserts are undone newest first");
      TB_ASSERT(account_transfers_.back().empty());
      account_by_id_.erase(accounts_.back().id);
      accounts_.pop_back();
      account_transfers_.pop_back();
      return;
    }
    case UndoKind::kTransferInserted: {
      TB_ASSERT(entry.index + 1 == transfers_.size(), "inserts are undone newest first");
      const TransferRecord& record = transfers_.back();
      for (uint32_t account_index : {record.debit_account_index, record.credit_account_index}) {
        std::vector<uint32_t>& list = account_transfers_[account_index];
        TB_ASSERT(!list.empty() && list.back() == entry.index);
        list.pop_back();
      }
      transfer_by_id_.erase(record.transfer.id);
      transfers_.pop_back();
      return;
    }
    case UndoKind::kAccountState: {
      Account& account = accounts_[entry.index];
      account.debits_pending = entry.balances.debits_pending;
      account.debits_posted = entry.balances.debits_posted;
      account.credits_pending = entry.balances.credits_pending;
      account.credits_posted = entry.balances.credits_posted;
      account.flags = entry.flags;
      return;
    }
    case UndoKind::kPendingState:
      transfers_[entry.index].pending_state = entry.pending_state;
      return;
    case UndoKind::kExpiryScheduled: {
      const size_t erased = expiry_schedule_.erase({entry.expires_at, entry.index});
      TB_ASSERT(erased == 1);
      return;
    }
    case UndoKind::kExpiryUnscheduled: {
      const bool inserted = expiry_schedule_.insert({entry.expires_at, entry.index}).second;
      TB_ASSERT(inserted);
      return;
    }
  }
  TB_ASSERT(false, "unknown undo kind");
}

}  // namespace tb::devcluster
