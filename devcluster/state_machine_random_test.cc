// Seeded random workloads against the state machine, checking ledger invariants after every
// request: double-entry sums, pending reservations matching the unresolved pending transfers,
// balance limits, closed flags, and that results agree with lookups. The seed is printed on
// failure; rerun one with --gtest_filter and TB_SEED=<seed>.

#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "client_core/types.h"
#include "devcluster/state_machine.h"
#include "devcluster/testing/state_machine_client.h"
#include "gtest/gtest.h"

namespace tb::devcluster {
namespace {

using testing::MakeAccount;
using testing::MakeTransfer;
using testing::StateMachineClient;
namespace tf = transfer_flags;
namespace af = account_flags;

constexpr uint64_t kSecond = 1'000'000'000;
constexpr uint32_t kAccounts = 8;
constexpr uint32_t kTransferIds = 400;  // Small, so retries, exists and failed ids happen.

class RandomWorkload {
 public:
  explicit RandomWorkload(uint64_t seed) : random_(seed) {}

  Transfer NextTransfer() {
    Transfer t = MakeTransfer(1 + Pick(kTransferIds), 1 + Pick(kAccounts), 1 + Pick(kAccounts),
                              Pick(4) == 0 ? kU128Max : Pick(50));
    const uint32_t kind = Pick(10);
    if (kind < 3) {
      t.flags |= tf::kPending;
      if (Pick(2) == 0) t.timeout = 1 + Pick(3);
      if (Pick(8) == 0) t.flags |= Pick(2) == 0 ? tf::kClosingDebit : tf::kClosingCredit;
    } else if (kind < 6) {
      t.flags |= Pick(3) == 0 ? tf::kVoidPendingTransfer : tf::kPostPendingTransfer;
      // Mostly a pending transfer that was created, sometimes any id.
      t.pending_id = !pending_ids_.empty() && Pick(4) != 0
                         ? pending_ids_[Pick(static_cast<uint32_t>(pending_ids_.size()))]
                         : 1 + Pick(kTransferIds);
      t.debit_account_id = 0;
      t.credit_account_id = 0;
      t.ledger = 0;
      t.code = 0;
      if (Pick(3) == 0) t.amount = 0;
    }
    if ((t.flags & (tf::kPostPendingTransfer | tf::kVoidPendingTransfer)) == 0) {
      if (Pick(4) == 0) t.flags |= tf::kBalancingDebit;
      if (Pick(4) == 0) t.flags |= tf::kBalancingCredit;
    }
    if (Pick(4) == 0) t.flags |= tf::kLinked;
    return t;
  }

  void OnCreated(const Transfer& transfer) {
    if ((transfer.flags & tf::kPending) != 0) pending_ids_.push_back(transfer.id);
  }

  uint32_t Pick(uint32_t bound) {
    return std::uniform_int_distribution<uint32_t>(0, bound - 1)(random_);
  }

 private:
  std::mt19937_64 random_;
  std::vector<u128> pending_ids_;
};

// Checks every invariant that must hold between requests.
void CheckInvariants(const Database& db) {
  u128 debits_posted = 0, credits_posted = 0, debits_pending = 0, credits_pending = 0;
  absl::flat_hash_map<uint32_t, u128> reserved_debits, reserved_credits;
  absl::flat_hash_map<uint32_t, uint16_t> closed_by_pending;
  for (size_t index = 0; index < db.transfer_count(); index++) {
    const TransferRecord& record = db.transfer(static_cast<uint32_t>(index));
    if (record.pending_state != PendingState::kPending) continue;
    reserved_debits[record.debit_account_index] += record.transfer.amount;
    reserved_credits[record.credit_account_index] += record.transfer.amount;
    if ((record.transfer.flags & tf::kClosingDebit) != 0) {
      closed_by_pending[record.debit_account_index] = 1;
    }
    if ((record.transfer.flags & tf::kClosingCredit) != 0) {
      closed_by_pending[record.credit_account_index] = 1;
    }
  }
  for (size_t index = 0; index < db.account_count(); index++) {
    const Account& a = db.account(static_cast<uint32_t>(index));
    const auto i = static_cast<uint32_t>(index);
    debits_posted += a.debits_posted;
    credits_posted += a.credits_posted;
    debits_pending += a.debits_pending;
    credits_pending += a.credits_pending;
    ASSERT_EQ(a.debits_pending, reserved_debits[i]) << "account " << index;
    ASSERT_EQ(a.credits_pending, reserved_credits[i]) << "account " << index;
    if ((a.flags & af::kDebitsMustNotExceedCredits) != 0) {
      ASSERT_LE(a.debits_pending + a.debits_posted, a.credits_posted) << "account " << index;
    }
    if ((a.flags & af::kCreditsMustNotExceedDebits) != 0) {
      ASSERT_LE(a.credits_pending + a.credits_posted, a.debits_posted) << "account " << index;
    }
    // Accounts here are created open, so closed <=> an unresolved closing pending transfer.
    ASSERT_EQ((a.flags & af::kClosed) != 0, closed_by_pending.contains(i)) << "account " << index;
  }
  ASSERT_EQ(debits_posted, credits_posted);
  ASSERT_EQ(debits_pending, credits_pending);
}

uint64_t BaseSeed() {
  const char* text = std::getenv("TB_SEED");
  return text != nullptr ? std::strtoull(text, nullptr, 10) : 20261122;
}

TEST(StateMachineRandom, LedgerInvariantsHoldUnderRandomBatches) {
  for (uint64_t round = 0; round < 20; round++) {
    const uint64_t seed = BaseSeed() + round;
    SCOPED_TRACE("seed " + std::to_string(seed));
    RandomWorkload workload(seed);
    StateMachine machine({});
    StateMachineClient client(&machine);
    std::vector<Account> accounts;
    for (uint32_t id = 1; id <= kAccounts; id++) {
      const uint16_t limit = id % 4 == 1   ? af::kDebitsMustNotExceedCredits
                             : id % 4 == 2 ? af::kCreditsMustNotExceedDebits
                                           : 0;
      accounts.push_back(MakeAccount(id, limit | af::kHistory));
    }
    client.CreateAccounts(accounts);
    for (int request = 0; request < 60; request++) {
      std::vector<Transfer> batch;
      const uint32_t size = 1 + workload.Pick(40);
      for (uint32_t i = 0; i < size; i++) batch.push_back(workload.NextTransfer());
      const std::vector<CreateResult> results = client.CreateTransfers(batch);
      ASSERT_EQ(results.size(), batch.size());
      for (size_t i = 0; i < results.size(); i++) {
        const bool stored = !client.LookupTransfers({batch[i].id}).empty();
        if (results[i].status == static_cast<uint32_t>(CreateTransferStatus::kCreated) ||
            results[i].status == static_cast<uint32_t>(CreateTransferStatus::kExists)) {
          ASSERT_TRUE(stored) << "request " << request << " event " << i;
          workload.OnCreated(batch[i]);
        }
      }
      ASSERT_NO_FATAL_FAILURE(CheckInvariants(machine.database())) << "request " << request;
      if (workload.Pick(5) == 0) {
        machine.Tick(machine.timestamp() + workload.Pick(3) * kSecond);
        ASSERT_NO_FATAL_FAILURE(CheckInvariants(machine.database())) << "after tick";
      }
    }
    // Eventually every pending transfer with a timeout is resolved.
    machine.Tick(machine.timestamp() + 10 * kSecond);
    ASSERT_NO_FATAL_FAILURE(CheckInvariants(machine.database()));
    EXPECT_FALSE(machine.database().EarliestExpiry().has_value());
    // The workload must reach every kind of account event, or the checks above prove little.
    absl::flat_hash_map<ChangeEventType, int> kinds;
    for (const TransferRecord& record : machine.database().transfers()) kinds[record.event_type]++;
    EXPECT_GT(kinds[ChangeEventType::kSinglePhase], 0);
    EXPECT_GT(kinds[ChangeEventType::kTwoPhasePending], 0);
    EXPECT_GT(kinds[ChangeEventType::kTwoPhasePosted], 0);
    EXPECT_GT(kinds[ChangeEventType::kTwoPhaseVoided], 0);
    EXPECT_GT(machine.database().expiries().size(), 0u);
  }
}

}  // namespace
}  // namespace tb::devcluster
