// Lookups and queries (STATE_MACHINE.md §11–§14). Objects are stored in timestamp order, so a
// time range is a binary search and the scan visits only objects inside the range.

#include "devcluster/queries.h"

#include <algorithm>
#include <cstring>

#include "client_core/assert.h"
#include "client_core/bytes.h"
#include "devcluster/internal/query_range.h"

namespace tb::devcluster {
namespace {

using internal::AllZero;
using internal::TimestampRange;

template <typename Object, typename Find, typename Get>
uint32_t Lookup(std::span<const uint8_t> ids, std::vector<uint8_t>& out, Find find, Get get) {
  TB_ASSERT(ids.size() % sizeof(u128) == 0);
  uint32_t count = 0;
  for (size_t offset = 0; offset < ids.size(); offset += sizeof(u128)) {
    u128 id;
    std::memcpy(&id, ids.data() + offset, sizeof(id));
    if (std::optional<uint32_t> index = find(id)) {
      const Object& object = get(*index);
      AppendStruct(&out, object);
      count++;
    }
  }
  return count;
}

bool AccountFilterValid(const AccountFilter& filter) {
  return filter.account_id != 0 && filter.account_id != kU128Max &&
         TimestampRange::Valid(filter.timestamp_min, filter.timestamp_max, filter.limit) &&
         (filter.flags & (account_filter_flags::kDebits | account_filter_flags::kCredits)) != 0 &&
         (filter.flags & ~account_filter_flags::kAll) == 0 && AllZero(filter.reserved);
}

bool TransferMatches(const AccountFilter& filter, const Transfer& transfer) {
  const bool side = ((filter.flags & account_filter_flags::kDebits) != 0 &&
                     transfer.debit_account_id == filter.account_id) ||
                    ((filter.flags & account_filter_flags::kCredits) != 0 &&
                     transfer.credit_account_id == filter.account_id);
  return side &&
         (filter.user_data_128 == 0 || filter.user_data_128 == transfer.user_data_128) &&
         (filter.user_data_64 == 0 || filter.user_data_64 == transfer.user_data_64) &&
         (filter.user_data_32 == 0 || filter.user_data_32 == transfer.user_data_32) &&
         (filter.code == 0 || filter.code == transfer.code);
}

// Calls `visit(record)` for the transfers an AccountFilter selects (§12), in result order, at
// most min(limit, result_max) times. The filter must be valid and its account must exist.
template <typename Visit>
void ScanAccountTransfers(const Database& db, uint32_t account_index, const AccountFilter& filter,
                          uint32_t result_max, Visit visit) {
  const TimestampRange range(filter.timestamp_min, filter.timestamp_max);
  const std::vector<uint32_t>& list = db.account_transfers(account_index);
  auto timestamp_of = [&](uint32_t index) { return db.transfer(index).transfer.timestamp; };
  auto first = std::lower_bound(list.begin(), list.end(), range.min, [&](uint32_t index,
                                                                       uint64_t value) {
    return timestamp_of(index) < value;
  });
  auto last = std::upper_bound(first, list.end(), range.max, [&](uint64_t value, uint32_t index) {
    return value < timestamp_of(index);
  });
  const uint32_t limit = std::min(filter.limit, result_max);
  uint32_t count = 0;
  auto consider = [&](uint32_t index) {
    const TransferRecord& record = db.transfer(index);
    if (!TransferMatches(filter, record.transfer)) return;
    visit(record);
    count++;
  };
  if ((filter.flags & account_filter_flags::kReversed) != 0) {
    for (auto it = last; it != first && count < limit;) consider(*--it);
  } else {
    for (auto it = first; it != last && count < limit; ++it) consider(*it);
  }
}

bool QueryFilterValid(const QueryFilter& filter) {
  return TimestampRange::Valid(filter.timestamp_min, filter.timestamp_max, filter.limit) &&
         (filter.flags & ~query_filter_flags::kAll) == 0 && AllZero(filter.reserved);
}

template <typename Object>
bool ObjectMatches(const QueryFilter& filter, const Object& object) {
  return (filter.user_data_128 == 0 || filter.user_data_128 == object.user_data_128) &&
         (filter.user_data_64 == 0 || filter.user_data_64 == object.user_data_64) &&
         (filter.user_data_32 == 0 || filter.user_data_32 == object.user_data_32) &&
         (filter.ledger == 0 || filter.ledger == object.ledger) &&
         (filter.code == 0 || filter.code == object.code);
}

// §14 over `items` (sorted by timestamp); `object_of(item)` gives the Account or Transfer.
template <typename Item, typename ObjectOf>
uint32_t Query(const std::vector<Item>& items, const QueryFilter& filter, uint32_t result_max,
               std::vector<uint8_t>& out, ObjectOf object_of) {
  if (!QueryFilterValid(filter)) return 0;
  const TimestampRange range(filter.timestamp_min, filter.timestamp_max);
  auto first = std::lower_bound(items.begin(), items.end(), range.min,
                                [&](const Item& item, uint64_t value) {
                                  return object_of(item).timestamp < value;
                                });
  auto last = std::upper_bound(first, items.end(), range.max,
                               [&](uint64_t value, const Item& item) {
                                 return value < object_of(item).timestamp;
                               });
  const uint32_t limit = std::min(filter.limit, result_max);
  uint32_t count = 0;
  auto consider = [&](const Item& item) {
    if (!ObjectMatches(filter, object_of(item))) return;
    AppendStruct(&out, object_of(item));
    count++;
  };
  if ((filter.flags & query_filter_flags::kReversed) != 0) {
    for (auto it = last; it != first && count < limit;) consider(*--it);
  } else {
    for (auto it = first; it != last && count < limit; ++it) consider(*it);
  }
  return count;
}

}  // namespace

uint32_t LookupAccounts(const Database& db, std::span<const uint8_t> ids,
                        std::vector<uint8_t>& out) {
  return Lookup<Account>(
      ids, out, [&](u128 id) { return db.FindAccount(id); },
      [&](uint32_t index) -> const Account& { return db.account(index); });
}

uint32_t LookupTransfers(const Database& db, std::span<const uint8_t> ids,
                         std::vector<uint8_t>& out) {
  return Lookup<Transfer>(
      ids, out, [&](u128 id) { return db.FindTransfer(id); },
      [&](uint32_t index) -> const Transfer& { return db.transfer(index).transfer; });
}

uint32_t GetAccountTransfers(const Database& db, const AccountFilter& filter, uint32_t result_max,
                             std::vector<uint8_t>& out) {
  if (!AccountFilterValid(filter)) return 0;
  // A missing account matches nothing.
  const std::optional<uint32_t> account_index = db.FindAccount(filter.account_id);
  if (!account_index) return 0;
  uint32_t count = 0;
  ScanAccountTransfers(db, *account_index, filter, result_max, [&](const TransferRecord& record) {
    AppendStruct(&out, record.transfer);
    count++;
  });
  return count;
}

uint32_t GetAccountBalances(const Database& db, const AccountFilter& filter, uint32_t result_max,
                            std::vector<uint8_t>& out) {
  if (!AccountFilterValid(filter)) return 0;
  const std::optional<uint32_t> account_index = db.FindAccount(filter.account_id);
  if (!account_index) return 0;
  if ((db.account(*account_index).flags & account_flags::kHistory) == 0) return 0;
  uint32_t count = 0;
  ScanAccountTransfers(db, *account_index, filter, result_max, [&](const TransferRecord& record) {
    const AccountSnapshot& snapshot = record.debit_account_index == *account_index
                                          ? record.debit_after
                                          : record.credit_after;
    AccountBalance balance{};
    balance.debits_pending = snapshot.balances.debits_pending;
    balance.debits_posted = snapshot.balances.debits_posted;
    balance.credits_pending = snapshot.balances.credits_pending;
    balance.credits_posted = snapshot.balances.credits_posted;
    balance.timestamp = record.transfer.timestamp;
    AppendStruct(&out, balance);
    count++;
  });
  return count;
}

uint32_t QueryAccounts(const Database& db, const QueryFilter& filter, uint32_t result_max,
                       std::vector<uint8_t>& out) {
  return Query(db.accounts(), filter, result_max, out,
               [](const Account& account) -> const Account& { return account; });
}

uint32_t QueryTransfers(const Database& db, const QueryFilter& filter, uint32_t result_max,
                        std::vector<uint8_t>& out) {
  return Query(db.transfers(), filter, result_max, out,
               [](const TransferRecord& record) -> const Transfer& { return record.transfer; });
}

}  // namespace tb::devcluster
