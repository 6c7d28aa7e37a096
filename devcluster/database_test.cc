#include "devcluster/database.h"

#include "client_core/testing/events.h"
#include "gtest/gtest.h"

namespace tb::devcluster {
namespace {

Account AccountAt(u128 id, uint64_t timestamp) {
  Account account = client_core::testing::MakeAccount(id);
  account.timestamp = timestamp;
  return account;
}

TransferRecord MakeRecord(u128 id, uint32_t debit, uint32_t credit, uint64_t timestamp) {
  TransferRecord record{};
  record.transfer.id = id;
  record.transfer.timestamp = timestamp;
  record.debit_account_index = debit;
  record.credit_account_index = credit;
  record.pending_state = PendingState::kPending;
  return record;
}

TEST(Database, RollbackRestoresEveryChangeMadeInTheScope) {
  Database db({.account_count_reserve = 4, .transfer_count_reserve = 4});
  db.InsertAccount(AccountAt(1, 10));
  db.InsertAccount(AccountAt(2, 11));
  const uint32_t pending = db.InsertTransfer(MakeRecord(100, 0, 1, 12));
  db.ScheduleExpiry(1000, pending);

  db.BeginScope();
  db.InsertAccount(AccountAt(3, 20));
  db.InsertTransfer(MakeRecord(101, 0, 2, 21));
  db.SetAccountState(0, {.debits_pending = 5, .debits_posted = 6}, account_flags::kClosed);
  db.SetAccountState(0, {.debits_pending = 7}, 0);
  db.SetPendingState(pending, PendingState::kPosted);
  db.UnscheduleExpiry(1000, pending);
  db.ScheduleExpiry(2000, pending);
  db.AddFailedTransferId(555);  // Not part of the scope.
  db.set_pulse_hint(2000);      // Neither is this.
  db.RollbackScope();

  EXPECT_EQ(db.account_count(), 2u);
  EXPECT_FALSE(db.FindAccount(3).has_value());
  EXPECT_EQ(db.transfer_count(), 1u);
  EXPECT_FALSE(db.FindTransfer(101).has_value());
  EXPECT_EQ(db.account_transfers(0), (std::vector<uint32_t>{pending}));
  EXPECT_EQ(db.account(0).debits_pending, 0u);
  EXPECT_EQ(db.account(0).debits_posted, 0u);
  EXPECT_EQ(db.account(0).flags, 0);
  EXPECT_EQ(db.transfer(pending).pending_state, PendingState::kPending);
  EXPECT_EQ(db.EarliestExpiry(), (std::pair<uint64_t, uint32_t>{1000, pending}));
  EXPECT_EQ(db.DueExpiries(5000, 10).size(), 1u);
  EXPECT_TRUE(db.TransferIdFailed(555));
  EXPECT_EQ(db.pulse_hint(), 2000u);
  EXPECT_EQ(db.account_timestamp_max(), 11u);
  EXPECT_EQ(db.transfer_timestamp_max(), 12u);
}

TEST(Database, CommitKeepsChangesAndTimestampLookupsUseStoredOrder) {
  Database db({});
  db.BeginScope();
  db.InsertAccount(AccountAt(1, 10));
  db.InsertAccount(AccountAt(2, 30));
  db.InsertTransfer(MakeRecord(7, 0, 1, 40));
  db.CommitScope();
  db.BeginScope();
  db.RollbackScope();  // Nothing recorded since the commit.
  EXPECT_EQ(db.account_count(), 2u);
  EXPECT_TRUE(db.AccountHasTimestamp(30));
  EXPECT_FALSE(db.AccountHasTimestamp(20));
  EXPECT_TRUE(db.TransferHasTimestamp(40));
  EXPECT_FALSE(db.TransferHasTimestamp(30));
  EXPECT_EQ(db.account_transfers(1), (std::vector<uint32_t>{0}));
}

TEST(Database, DueExpiriesAreOrderedAndBounded) {
  Database db({});
  db.InsertAccount(AccountAt(1, 1));
  db.InsertAccount(AccountAt(2, 2));
  for (uint32_t i = 0; i < 5; i++) db.InsertTransfer(MakeRecord(10 + i, 0, 1, 3 + i));
  db.ScheduleExpiry(50, 3);
  db.ScheduleExpiry(50, 1);
  db.ScheduleExpiry(40, 4);
  db.ScheduleExpiry(90, 0);
  const auto due = db.DueExpiries(60, 2);
  ASSERT_EQ(due.size(), 2u);
  EXPECT_EQ(due[0], (std::pair<uint64_t, uint32_t>{40, 4}));
  EXPECT_EQ(due[1], (std::pair<uint64_t, uint32_t>{50, 1}));  // Ties by creation order.
  EXPECT_EQ(db.DueExpiries(60, 10).size(), 3u);
}

}  // namespace
}  // namespace tb::devcluster
