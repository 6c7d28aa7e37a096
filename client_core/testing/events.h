// Test events: valid accounts and transfers (ledger 1, code 1 unless asked otherwise) and the
// request bodies made of them, for the tests of every layer.
//
//   std::vector<Account> accounts = {MakeAccount(1), MakeAccount(2, account_flags::kHistory)};
//   std::vector<uint8_t> body = CreateAccountsBody(/*count=*/3);  // One batch, ids 1, 2, 3.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "client_core/bytes.h"
#include "client_core/multi_batch.h"
#include "client_core/types.h"
#include "client_core/u128.h"

namespace tb::client_core::testing {

inline Account MakeAccount(u128 id, uint16_t flags = 0, uint32_t ledger = 1, uint16_t code = 1) {
  Account account{};
  account.id = id;
  account.ledger = ledger;
  account.code = code;
  account.flags = flags;
  return account;
}

inline Transfer MakeTransfer(u128 id, u128 debit_account_id, u128 credit_account_id, u128 amount,
                             uint16_t flags = 0, uint32_t ledger = 1, uint16_t code = 1) {
  Transfer transfer{};
  transfer.id = id;
  transfer.debit_account_id = debit_account_id;
  transfer.credit_account_id = credit_account_id;
  transfer.amount = amount;
  transfer.ledger = ledger;
  transfer.code = code;
  transfer.flags = flags;
  return transfer;
}

// The events of `count` accounts with ids first_id, first_id + 1, ..., as bytes.
inline std::vector<uint8_t> AccountEvents(uint32_t count, u128 first_id = 1, uint16_t flags = 0) {
  std::vector<uint8_t> events;
  for (uint32_t i = 0; i < count; i++) AppendStruct(&events, MakeAccount(first_id + i, flags));
  return events;
}

// A create_accounts (146) request body: one batch of the accounts of AccountEvents().
inline std::vector<uint8_t> CreateAccountsBody(uint32_t count, u128 first_id = 1) {
  const std::vector<uint8_t> events = AccountEvents(count, first_id);
  const std::span<const uint8_t> batches[] = {events};
  return EncodeMultiBatch(sizeof(Account), batches);
}

}  // namespace tb::client_core::testing
