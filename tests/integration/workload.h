// Seeded random calls for the end-to-end tests: every operation tbproxy forwards, with linked
// chains that fail, open chains, invalid events, contested ids (whose outcome depends on the
// commit order), overdraft-protected accounts, lookups, queries, account transfers and balances,
// change events, and whole calls that break a rule (refused alone).
//
// Every valid call's bytes are unique (a caller-unique id, or a caller-unique timestamp_min far
// below any real timestamp in filters), so a batch seen in a message names its caller.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "client_core/bytes.h"
#include "client_core/operation.h"
#include "client_core/testing/events.h"
#include "client_core/types.h"
#include "proxy/submitter.h"

namespace tb::integration {

inline constexpr uint32_t kBaseAccounts = 16;  // Ids 1..16; 1..8 refuse overdrafts.

// The seed: TBPROXY_TEST_SEED if set, else `fallback`.
inline uint64_t TestSeed(uint64_t fallback) {
  const char* text = std::getenv("TBPROXY_TEST_SEED");
  if (text == nullptr || *text == '\0') return fallback;
  return std::strtoull(text, nullptr, 10);
}

// The accounts every workload starts from.
inline proxy::SubmitRequest BaseAccounts() {
  std::vector<Account> accounts;
  for (uint32_t id = 1; id <= kBaseAccounts; id++) {
    accounts.push_back(client_core::testing::MakeAccount(
        id, id <= 8 ? account_flags::kDebitsMustNotExceedCredits : account_flags::kHistory));
  }
  return {.operation = static_cast<uint8_t>(Operation::kCreateAccounts), .events = StructsBytes(accounts)};
}

struct WorkloadCall {
  proxy::SubmitRequest request;
  bool valid = true;  // False: must be refused alone with kInvalidArgument.
};

// The call of caller `caller` (deterministic in seed and caller).
inline WorkloadCall MakeCall(uint64_t seed, uint32_t caller) {
  std::mt19937_64 rng(seed * 1'000'003 + caller);
  auto below = [&rng](uint64_t n) { return rng() % n; };
  const u128 unique_account = 1'000'000 + uint64_t{caller} * 16;
  const u128 unique_transfer = 10'000'000 + uint64_t{caller} * 16;
  const u128 absent = 900'000'000 + uint64_t{caller};  // Never created.
  const uint64_t tag = uint64_t{caller} + 1;             // A unique timestamp_min.
  auto base = [&] { return u128{1 + below(kBaseAccounts)}; };
  auto earlier_account = [&]() -> u128 {
    return caller == 0 ? u128{1} : 1'000'000 + below(caller) * 16 + below(3);
  };
  auto earlier_transfer = [&]() -> u128 {
    return caller == 0 ? u128{1} : 10'000'000 + below(caller) * 16 + below(3);
  };

  WorkloadCall call;
  const uint64_t kind = below(100);
  if (kind < 25) {  // create_accounts
    std::vector<Account> accounts;
    const uint32_t count = 1 + below(5);
    for (uint32_t i = 0; i < count; i++) accounts.push_back(client_core::testing::MakeAccount(unique_account + i));
    const uint64_t variant = below(6);
    if (variant == 0) {  // A linked chain with a failing event: the whole chain fails.
      for (Account& account : accounts) account.flags |= account_flags::kLinked;
      accounts.back().flags &= ~account_flags::kLinked;
      accounts[below(count)].code = 0;
    } else if (variant == 1) {  // An open chain.
      accounts.back().flags |= account_flags::kLinked;
    } else if (variant == 2) {  // An invalid event among valid ones.
      accounts[below(count)].ledger = 0;
    } else if (variant == 3) {  // Contested ids: created by the first caller, `exists` after.
      accounts.push_back(client_core::testing::MakeAccount(500 + below(32)));
    } else if (variant == 4) {  // A base account again: `exists` or a different-flags status.
      const u128 id = base();
      accounts.push_back(client_core::testing::MakeAccount(id, id <= 8 ? account_flags::kDebitsMustNotExceedCredits
                                                : account_flags::kHistory));
    }
    call.request = {.operation = static_cast<uint8_t>(Operation::kCreateAccounts),
                    .events = StructsBytes(accounts)};
  } else if (kind < 55) {  // create_transfers
    std::vector<Transfer> transfers;
    const uint32_t count = 1 + below(5);
    for (uint32_t i = 0; i < count; i++) {
      Transfer transfer{};
      transfer.id = unique_transfer + i;
      transfer.debit_account_id = base();
      do {
        transfer.credit_account_id = base();
      } while (transfer.credit_account_id == transfer.debit_account_id);
      transfer.amount = 1 + below(50);
      transfer.ledger = 1;
      transfer.code = 1;
      if (below(5) == 0) transfer.flags |= transfer_flags::kPending;
      transfers.push_back(transfer);
    }
    const uint64_t variant = below(6);
    if (variant == 0) {
      for (Transfer& transfer : transfers) transfer.flags |= transfer_flags::kLinked;
      transfers.back().flags &= ~transfer_flags::kLinked;
      Transfer& bad = transfers[below(count)];
      bad.credit_account_id = bad.debit_account_id;  // accounts_must_be_different
    } else if (variant == 1) {
      transfers.back().flags |= transfer_flags::kLinked;
    } else if (variant == 2) {
      transfers[below(count)].ledger = 0;
    } else if (variant == 3) {  // A transfer id of an earlier caller: exists / exists_with_...
      transfers.push_back(transfers.front());
      transfers.back().id = earlier_transfer();
    }
    call.request = {.operation = static_cast<uint8_t>(Operation::kCreateTransfers),
                    .events = StructsBytes(transfers)};
  } else if (kind < 65) {  // lookup_accounts
    std::vector<u128> ids = {absent};
    const uint32_t count = below(6);
    for (uint32_t i = 0; i < count; i++) {
      const uint64_t pick = below(3);
      ids.push_back(pick == 0 ? base() : pick == 1 ? u128{500 + below(32)} : earlier_account());
    }
    std::shuffle(ids.begin(), ids.end(), rng);
    call.request = {.operation = static_cast<uint8_t>(Operation::kLookupAccounts),
                    .events = StructsBytes(ids)};
  } else if (kind < 72) {  // lookup_transfers
    std::vector<u128> ids = {absent};
    const uint32_t count = below(6);
    for (uint32_t i = 0; i < count; i++) ids.push_back(earlier_transfer());
    std::shuffle(ids.begin(), ids.end(), rng);
    call.request = {.operation = static_cast<uint8_t>(Operation::kLookupTransfers),
                    .events = StructsBytes(ids)};
  } else if (kind < 80) {  // get_account_transfers / get_account_balances
    AccountFilter filter{};
    filter.account_id = base();
    filter.timestamp_min = tag;
    filter.limit = 1 + below(20);
    filter.flags = 1 + below(3);  // debits, credits or both.
    if (below(2) == 0) filter.flags |= account_filter_flags::kReversed;
    const bool balances = below(2) == 0;
    call.request = {.operation = static_cast<uint8_t>(balances ? Operation::kGetAccountBalances
                                                               : Operation::kGetAccountTransfers),
                    .events = StructsBytes(std::vector<AccountFilter>{filter})};
  } else if (kind < 88) {  // query_accounts / query_transfers
    QueryFilter filter{};
    filter.ledger = 1;
    filter.code = below(2) == 0 ? 1 : 0;
    filter.timestamp_min = tag;
    filter.limit = 1 + below(20);
    if (below(2) == 0) filter.flags = query_filter_flags::kReversed;
    const bool accounts = below(2) == 0;
    call.request = {.operation = static_cast<uint8_t>(accounts ? Operation::kQueryAccounts
                                                               : Operation::kQueryTransfers),
                    .events = StructsBytes(std::vector<QueryFilter>{filter})};
  } else if (kind < 94) {  // get_change_events
    ChangeEventsFilter filter{};
    filter.timestamp_min = tag;
    filter.limit = 1 + below(20);
    call.request = {.operation = static_cast<uint8_t>(Operation::kGetChangeEvents),
                    .events = StructsBytes(std::vector<ChangeEventsFilter>{filter})};
  } else {  // A call that breaks a rule: refused alone, never sent.
    call.valid = false;
    const uint64_t variant = below(3);
    if (variant == 0) {  // Over the per-batch event limit.
      std::vector<Account> accounts(8190, client_core::testing::MakeAccount(unique_account));
      call.request = {.operation = static_cast<uint8_t>(Operation::kCreateAccounts),
                      .events = StructsBytes(accounts)};
    } else if (variant == 1) {  // Not a whole number of events.
      call.request = {.operation = static_cast<uint8_t>(Operation::kCreateTransfers),
                      .events = std::vector<uint8_t>(sizeof(Transfer) + 7, 1)};
    } else {  // Two filters in one query batch.
      call.request = {.operation = static_cast<uint8_t>(Operation::kQueryAccounts),
                      .events = std::vector<uint8_t>(2 * sizeof(QueryFilter), 0)};
    }
  }
  return call;
}

}  // namespace tb::integration
