// Unit tests for the tricky parts of the state machine, through its wire interface. The
// conformance suite (conformance_test.cc) covers the documented tables; these tests pin down
// rollback completeness, pulses and limits, multi-batch timestamps, the deprecated operations
// and robustness against malformed bodies.

#include "devcluster/state_machine.h"

#include <vector>

#include "client_core/bytes.h"
#include "client_core/multi_batch.h"
#include "client_core/testing/events.h"
#include "client_core/types.h"
#include "devcluster/pulse.h"
#include "devcluster/testing/state_machine_client.h"
#include "gtest/gtest.h"

namespace tb::devcluster {
namespace {

using client_core::testing::MakeAccount;
using client_core::testing::MakeTransfer;
using testing::StateMachineClient;
using testing::Status;
using TS = CreateTransferStatus;
using AS = CreateAccountStatus;
namespace tf = transfer_flags;

constexpr uint64_t kSecond = 1'000'000'000;

AccountFilter AccountTransfersFilter(u128 account_id, uint32_t flags = 3, uint32_t limit = 100) {
  AccountFilter filter{};
  filter.account_id = account_id;
  filter.limit = limit;
  filter.flags = flags;
  return filter;
}

ChangeEventsFilter AllChangeEvents() {
  ChangeEventsFilter filter{};
  filter.limit = 10000;
  return filter;
}

class StateMachineTest : public ::testing::Test {
 protected:
  void CreateAccounts(std::vector<u128> ids, uint16_t flags = 0) {
    std::vector<Account> accounts;
    for (u128 id : ids) accounts.push_back(MakeAccount(id, flags));
    for (const CreateResult& result : client_.CreateAccounts(accounts)) {
      ASSERT_EQ(result.status, Status(AS::kCreated));
    }
  }
  std::vector<uint32_t> Statuses(const std::vector<CreateResult>& results) {
    std::vector<uint32_t> statuses;
    for (const CreateResult& result : results) statuses.push_back(result.status);
    return statuses;
  }

  StateMachine machine_{{}};
  StateMachineClient client_{&machine_};
};

TEST_F(StateMachineTest, BrokenChainUndoesBalancesIndexesHistoryAndExpirySchedule) {
  CreateAccounts({1, 2}, account_flags::kHistory);
  Transfer pending = MakeTransfer(10, 1, 2, 5, tf::kPending | tf::kLinked);
  pending.timeout = 1;
  const std::vector<CreateResult> results = client_.CreateTransfers({
      pending,
      MakeTransfer(11, 1, 2, 7, tf::kLinked),
      MakeTransfer(12, 1, 99, 1),  // credit_account_not_found breaks the chain.
      MakeTransfer(13, 1, 2, 3),   // Independent of the chain.
  });
  EXPECT_EQ(Statuses(results),
            (std::vector<uint32_t>{Status(TS::kLinkedEventFailed), Status(TS::kLinkedEventFailed),
                                   Status(TS::kCreditAccountNotFound), Status(TS::kCreated)}));
  const uint64_t base = client_.last_reply().timestamp - 4;
  for (uint64_t i = 0; i < 4; i++) EXPECT_EQ(results[i].timestamp, base + i + 1) << i;

  EXPECT_TRUE(client_.LookupTransfers({10, 11, 12}).empty());
  const Account debit = client_.LookupAccount(1);
  EXPECT_EQ(debit.debits_pending, 0u);
  EXPECT_EQ(debit.debits_posted, 3u);
  EXPECT_EQ(client_.GetAccountTransfers(AccountTransfersFilter(1)).size(), 1u);
  EXPECT_EQ(client_.GetAccountBalances(AccountTransfersFilter(1)).size(), 1u);

  // The rolled-back pending transfer must not expire: only transfer 13 has an account event.
  machine_.Tick(machine_.timestamp() + 10 * kSecond);
  const std::vector<ChangeEvent> events = client_.GetChangeEvents(AllChangeEvents());
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].transfer_id, 13u);

  // Rolled-back ids are free again.
  EXPECT_EQ(client_.CreateTransfers({MakeTransfer(10, 1, 2, 1), MakeTransfer(11, 1, 2, 1)})[1]
                .status,
            Status(TS::kCreated));
}

TEST_F(StateMachineTest, TransientFailureBurnsIdEvenInsideRolledBackChain) {
  CreateAccounts({1, 2});
  EXPECT_EQ(Statuses(client_.CreateTransfers({
                MakeTransfer(5, 1, 2, 1, tf::kLinked),
                MakeTransfer(6, 1, 3, 1),  // credit_account_not_found (transient).
                MakeTransfer(7, 1, 3, 1),  // Transient outside a chain ...
                MakeTransfer(7, 1, 2, 1),  // ... burns the id at once, within the batch.
                MakeTransfer(8, 1, 2, 0, tf::kPostPendingTransfer),  // Not transient.
            })),
            (std::vector<uint32_t>{Status(TS::kLinkedEventFailed),
                                   Status(TS::kCreditAccountNotFound),
                                   Status(TS::kCreditAccountNotFound),
                                   Status(TS::kIdAlreadyFailed),
                                   Status(TS::kPendingIdMustNotBeZero)}));
  EXPECT_EQ(Statuses(client_.CreateTransfers({
                MakeTransfer(5, 1, 2, 1),
                MakeTransfer(6, 1, 2, 1),
                MakeTransfer(8, 1, 2, 1),
            })),
            (std::vector<uint32_t>{Status(TS::kCreated), Status(TS::kIdAlreadyFailed),
                                   Status(TS::kCreated)}));
  EXPECT_TRUE(client_.LookupTransfers({6, 7}).empty());
}

TEST_F(StateMachineTest, BalancingClampsToAvailableBalanceWithoutLimitFlags) {
  CreateAccounts({1, 2, 3});
  ASSERT_EQ(Statuses(client_.CreateTransfers({
                MakeTransfer(1, 3, 1, 100),                // 1 has credits_posted 100.
                MakeTransfer(2, 1, 3, 30, tf::kPending),   // and debits_pending 30.
                MakeTransfer(3, 1, 2, kU128Max, tf::kBalancingDebit),
                MakeTransfer(4, 1, 2, 50, tf::kBalancingDebit),
            })),
            std::vector<uint32_t>(4, Status(TS::kCreated)));
  const std::vector<Transfer> transfers = client_.LookupTransfers({3, 4});
  ASSERT_EQ(transfers.size(), 2u);
  EXPECT_EQ(transfers[0].amount, 70u);
  EXPECT_EQ(transfers[1].amount, 0u);  // Nothing left: created with amount 0.
  // A retry may carry any amount >= the recorded one.
  EXPECT_EQ(client_.CreateTransfers({MakeTransfer(3, 1, 2, 70, tf::kBalancingDebit)})[0].status,
            Status(TS::kExists));
  EXPECT_EQ(client_.CreateTransfers({MakeTransfer(3, 1, 2, 69, tf::kBalancingDebit)})[0].status,
            Status(TS::kExistsWithDifferentAmount));

  // balancing_credit clamps against debits_posted − credits of the credit account.
  // Account 2: debits_posted 100, credits_posted 70, so 30 may still be credited.
  ASSERT_EQ(client_.CreateTransfers({MakeTransfer(5, 2, 3, 100)})[0].status, Status(TS::kCreated));
  ASSERT_EQ(client_.CreateTransfers({MakeTransfer(6, 1, 2, 1000, tf::kBalancingCredit)})[0].status,
            Status(TS::kCreated));
  EXPECT_EQ(client_.LookupTransfers({6})[0].amount, 30u);
}

TEST_F(StateMachineTest, OverflowChecksRunPendingThenPostedThenCombined) {
  CreateAccounts({1, 2, 3, 4});
  ASSERT_EQ(client_.CreateTransfers({MakeTransfer(1, 1, 2, kU128Max - 5)})[0].status,
            Status(TS::kCreated));
  ASSERT_EQ(client_.CreateTransfers({MakeTransfer(2, 3, 4, kU128Max - 5, tf::kPending)})[0].status,
            Status(TS::kCreated));
  EXPECT_EQ(Statuses(client_.CreateTransfers({
                MakeTransfer(10, 1, 3, 6, tf::kPending),  // Pending fields fit, posted do not.
                MakeTransfer(11, 3, 1, 6, tf::kPending),  // debits_pending of 3 overflows.
                MakeTransfer(12, 1, 4, 6),                // debits_posted of 1.
                MakeTransfer(13, 4, 2, 6),                // credits_posted of 2.
                MakeTransfer(14, 3, 1, 6),                // debits of 3 (pending + posted).
                MakeTransfer(15, 2, 4, 6),                // credits of 4.
                MakeTransfer(16, 3, 1, 5),                // Exactly kU128Max: fits.
            })),
            (std::vector<uint32_t>{
                Status(TS::kOverflowsDebitsPosted), Status(TS::kOverflowsDebitsPending),
                Status(TS::kOverflowsDebitsPosted), Status(TS::kOverflowsCreditsPosted),
                Status(TS::kOverflowsDebits), Status(TS::kOverflowsCredits),
                Status(TS::kCreated)}));
}

TEST_F(StateMachineTest, PendingTransferExpiresInAPulseAndReopensItsAccount) {
  CreateAccounts({1, 2}, account_flags::kHistory);
  Transfer pending = MakeTransfer(1, 1, 2, 9, tf::kPending | tf::kClosingDebit);
  pending.timeout = 2;
  ASSERT_EQ(client_.CreateTransfers({pending})[0].status, Status(TS::kCreated));
  const uint64_t expires_at = client_.last_reply().timestamp + 2 * kSecond;
  EXPECT_EQ(client_.LookupAccount(1).flags & account_flags::kClosed, account_flags::kClosed);

  machine_.Tick(expires_at - 1);  // Not due yet: nothing is released early.
  EXPECT_EQ(client_.LookupAccount(1).debits_pending, 9u);
  machine_.Tick(expires_at);
  const Account account = client_.LookupAccount(1);
  EXPECT_EQ(account.debits_pending, 0u);
  EXPECT_EQ(account.flags & account_flags::kClosed, 0);

  const std::vector<ChangeEvent> events = client_.GetChangeEvents(AllChangeEvents());
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[1].type, ChangeEventType::kTwoPhaseExpired);
  EXPECT_EQ(events[1].transfer_id, 1u);
  EXPECT_EQ(events[1].transfer_amount, 9u);
  EXPECT_EQ(events[1].timestamp, expires_at + kPulseTimestampCount);  // The only expiry: T_p.
  EXPECT_EQ(events[1].debit_account_debits_pending, 0u);
  // Expiries are not transfers: get_account_balances has only the pending transfer's entry.
  EXPECT_EQ(client_.GetAccountBalances(AccountTransfersFilter(1)).size(), 1u);

  Transfer post = MakeTransfer(2, 0, 0, kU128Max, tf::kPostPendingTransfer);
  post.pending_id = 1;
  post.ledger = 0;
  post.code = 0;
  EXPECT_EQ(client_.CreateTransfers({post})[0].status, Status(TS::kPendingTransferExpired));
}

TEST_F(StateMachineTest, PostAfterExpiresAtFailsEvenBeforeThePulse) {
  CreateAccounts({1, 2});
  Transfer pending = MakeTransfer(1, 1, 2, 9, tf::kPending);
  pending.timeout = 1;
  ASSERT_EQ(client_.CreateTransfers({pending})[0].status, Status(TS::kCreated));
  const uint64_t expires_at = client_.last_reply().timestamp + kSecond;

  Transfer post = MakeTransfer(2, 0, 0, 4, tf::kPostPendingTransfer);
  post.pending_id = 1;
  client_.now_ns = expires_at - 1;  // The post's slot is exactly expires_at.
  const std::vector<CreateResult> results = client_.CreateTransfers({post});
  EXPECT_EQ(results[0].timestamp, expires_at);
  EXPECT_EQ(results[0].status, Status(TS::kPendingTransferExpired));
  // The pulse after that request released the reservation.
  EXPECT_EQ(client_.LookupAccount(1).debits_pending, 0u);
}

TEST_F(StateMachineTest, PostOrVoidResolvesOnceAndStopsTheExpiry) {
  CreateAccounts({1, 2});
  Transfer pending = MakeTransfer(1, 1, 2, 10, tf::kPending);
  pending.timeout = 5;
  ASSERT_EQ(client_.CreateTransfers({pending})[0].status, Status(TS::kCreated));
  Transfer post = MakeTransfer(2, 0, 0, 4, tf::kPostPendingTransfer);
  post.pending_id = 1;
  Transfer void_ = MakeTransfer(3, 0, 0, 0, tf::kVoidPendingTransfer);
  void_.pending_id = 1;
  EXPECT_EQ(Statuses(client_.CreateTransfers({post, void_})),
            (std::vector<uint32_t>{Status(TS::kCreated),
                                   Status(TS::kPendingTransferAlreadyPosted)}));
  machine_.Tick(machine_.timestamp() + 10 * kSecond);
  const Account account = client_.LookupAccount(1);
  EXPECT_EQ(account.debits_pending, 0u);
  EXPECT_EQ(account.debits_posted, 4u);  // The partial post released the remainder.
  EXPECT_EQ(client_.GetChangeEvents(AllChangeEvents()).size(), 2u);  // No expiry.
}

TEST(StateMachineLimits, SmallRequestLimitCapsExpiriesPerPulseAndChangeEvents) {
  StateMachine machine({.batch_size_limit = 32 * 1024 - 256});
  EXPECT_EQ(machine.expiries_per_pulse_max(), 254u);
  EXPECT_EQ(machine.change_events_max(), 1016u);
  StateMachineClient client(&machine);
  ASSERT_EQ(client.CreateAccounts({MakeAccount(1), MakeAccount(2)})[0].status,
            Status(AS::kCreated));
  constexpr int kRequests = 4;
  constexpr int kPerRequest = 150;  // 600 pending transfers: 254 + 254 + 92 expiries.
  for (int request = 0; request < kRequests; request++) {
    std::vector<Transfer> transfers;
    for (int i = 0; i < kPerRequest; i++) {
      Transfer transfer = MakeTransfer(1 + request * kPerRequest + i, 1, 2, 1, tf::kPending);
      transfer.timeout = 1;
      transfers.push_back(transfer);
    }
    ASSERT_EQ(client.CreateTransfers(transfers).back().status, Status(TS::kCreated));
  }
  const uint64_t before = machine.timestamp();
  machine.Tick(before + 2 * kSecond);  // Everything is due: three pulses back to back.
  const uint64_t pulse_1 = before + 2 * kSecond + kPulseTimestampCount;
  const uint64_t pulse_2 = pulse_1 + kPulseTimestampCount;
  const uint64_t pulse_3 = pulse_2 + kPulseTimestampCount;
  EXPECT_EQ(machine.timestamp(), pulse_3);

  ChangeEventsFilter filter = AllChangeEvents();
  filter.timestamp_min = before + 1;  // Only the expiries.
  const std::vector<ChangeEvent> events = client.GetChangeEvents(filter);
  ASSERT_EQ(events.size(), 600u);
  EXPECT_EQ(events[0].timestamp, pulse_1 - 254 + 1);
  EXPECT_EQ(events[253].timestamp, pulse_1);
  EXPECT_EQ(events[254].timestamp, pulse_2 - 254 + 1);
  EXPECT_EQ(events[507].timestamp, pulse_2);
  EXPECT_EQ(events[508].timestamp, pulse_3 - 92 + 1);
  EXPECT_EQ(events[599].timestamp, pulse_3);
  for (size_t i = 1; i < events.size(); i++) {
    EXPECT_EQ(events[i].transfer_id, events[i - 1].transfer_id + 1) << "expiries in order";
  }
  EXPECT_EQ(client.LookupAccount(1).debits_pending, 0u);
  filter.timestamp_min = 0;  // 600 transfers + 600 expiries, capped.
  EXPECT_EQ(client.GetChangeEvents(filter).size(), 1016u);
}

TEST_F(StateMachineTest, BatchesOfOneRequestShareOneTimestampRange) {
  const std::vector<std::vector<CreateResult>> results = client_.Request<CreateResult>(
      Operation::kCreateAccounts,
      std::vector<std::vector<Account>>{{MakeAccount(1), MakeAccount(2, account_flags::kLinked)},
                                        {MakeAccount(3), MakeAccount(4), MakeAccount(5)}});
  ASSERT_EQ(results.size(), 2u);
  const uint64_t request_timestamp = client_.last_reply().timestamp;
  EXPECT_EQ(request_timestamp, 1u + 5u);
  // A chain never spans batches: the batch's last event is an open chain.
  EXPECT_EQ(results[0][1].status, Status(AS::kLinkedEventChainOpen));
  const std::vector<uint64_t> timestamps = {results[0][0].timestamp, results[0][1].timestamp,
                                            results[1][0].timestamp, results[1][1].timestamp,
                                            results[1][2].timestamp};
  EXPECT_EQ(timestamps, (std::vector<uint64_t>{2, 3, 4, 5, 6}));
}

TEST_F(StateMachineTest, ClockFollowsWallClockAndNeverGoesBack) {
  client_.now_ns = 1'000'000 * kSecond;
  client_.CreateAccounts({MakeAccount(1), MakeAccount(2)});
  EXPECT_EQ(client_.last_reply().timestamp, 1'000'000 * kSecond + 2);
  client_.now_ns = 5;  // A clock that went backwards does not move timestamps back.
  client_.LookupAccounts({1});
  EXPECT_EQ(client_.last_reply().timestamp, 1'000'000 * kSecond + 3);
}

TEST_F(StateMachineTest, DeprecatedSparseCreatesReturnOnlyFailuresWithTheirIndex) {
  const std::vector<SparseCreateResult> sparse = client_.Single<SparseCreateResult>(
      Operation::kDeprecatedCreateAccountsSparse,
      std::vector<Account>{MakeAccount(1), MakeAccount(0), MakeAccount(2), MakeAccount(1)});
  ASSERT_EQ(sparse.size(), 2u);
  EXPECT_EQ(sparse[0].index, 1u);
  EXPECT_EQ(sparse[0].status, Status(AS::kIdMustNotBeZero));
  EXPECT_EQ(sparse[1].index, 3u);
  EXPECT_EQ(sparse[1].status, Status(AS::kExists));

  // The unbatched variant has a plain body and a plain reply.
  const std::vector<Transfer> transfers = {MakeTransfer(1, 1, 2, 1), MakeTransfer(2, 1, 1, 1)};
  const ExecuteResult reply = machine_.Execute(
      static_cast<uint8_t>(Operation::kDeprecatedCreateTransfersUnbatched),
      StructsAsBytes(transfers), 0);
  const std::vector<SparseCreateResult> plain =
      StructsFromBytes<SparseCreateResult>(reply.body);
  ASSERT_EQ(plain.size(), 1u);
  EXPECT_EQ(plain[0].index, 1u);
  EXPECT_EQ(plain[0].status, Status(TS::kAccountsMustBeDifferent));
}

TEST_F(StateMachineTest, MalformedBodyOrUnknownOperationChangesNothing) {
  const std::vector<uint8_t> garbage = {1, 2, 3};
  for (uint8_t operation : {uint8_t{146}, uint8_t{147}, uint8_t{140}, uint8_t{137},
                            uint8_t{128}, uint8_t{200}, uint8_t{0}}) {
    const ExecuteResult reply = machine_.Execute(operation, garbage, 0);
    EXPECT_TRUE(reply.body.empty()) << int{operation};
    EXPECT_EQ(reply.timestamp, 0u) << int{operation};
  }
  // A multi-batch query batch with two filters (invalid) selects nothing instead of reading on.
  const std::vector<AccountFilter> two = {AccountTransfersFilter(1), AccountTransfersFilter(1)};
  const std::span<const uint8_t> batches[] = {StructsAsBytes(two)};
  const ExecuteResult reply = machine_.Execute(
      static_cast<uint8_t>(Operation::kGetAccountTransfers), EncodeMultiBatch(128, batches), 0);
  absl::StatusOr<MultiBatchView> decoded = DecodeMultiBatch(reply.body, 128);
  ASSERT_TRUE(decoded.ok());
  ASSERT_EQ(decoded->size(), 1u);
  EXPECT_TRUE((*decoded)[0].empty());
  EXPECT_EQ(machine_.database().account_count(), 0u);
}

TEST_F(StateMachineTest, AccountTransfersHonourSideRangeOrderAndLimit) {
  CreateAccounts({1, 2, 3});
  Transfer with_user_data = MakeTransfer(4, 1, 2, 1);
  with_user_data.user_data_64 = 7;
  ASSERT_EQ(Statuses(client_.CreateTransfers({MakeTransfer(1, 1, 2, 1), MakeTransfer(2, 2, 1, 1),
                                              MakeTransfer(3, 2, 3, 1), with_user_data})),
            std::vector<uint32_t>(4, Status(TS::kCreated)));
  auto ids = [](const std::vector<Transfer>& transfers) {
    std::vector<u128> result;
    for (const Transfer& transfer : transfers) result.push_back(transfer.id);
    return result;
  };
  EXPECT_EQ(ids(client_.GetAccountTransfers(AccountTransfersFilter(1, 1))),
            (std::vector<u128>{1, 4}));  // Debits only.
  EXPECT_EQ(ids(client_.GetAccountTransfers(AccountTransfersFilter(1, 2))),
            (std::vector<u128>{2}));  // Credits only.
  EXPECT_EQ(ids(client_.GetAccountTransfers(AccountTransfersFilter(2, 3 | 4, 2))),
            (std::vector<u128>{4, 3}));  // Reversed, limit 2.
  AccountFilter range = AccountTransfersFilter(2);
  const uint64_t first = client_.LookupTransfers({2})[0].timestamp;
  range.timestamp_min = first;
  range.timestamp_max = first + 1;
  EXPECT_EQ(ids(client_.GetAccountTransfers(range)), (std::vector<u128>{2, 3}));
  AccountFilter by_user_data = AccountTransfersFilter(2);
  by_user_data.user_data_64 = 7;
  EXPECT_EQ(ids(client_.GetAccountTransfers(by_user_data)), (std::vector<u128>{4}));
  EXPECT_TRUE(client_.GetAccountTransfers(AccountTransfersFilter(1, 0)).empty());  // No side.
  EXPECT_TRUE(client_.GetAccountTransfers(AccountTransfersFilter(1, 8 | 1)).empty());  // Padding.
}

}  // namespace
}  // namespace tb::devcluster
