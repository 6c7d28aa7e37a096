// Seeded random workloads against the state machine, checking ledger invariants after every
// request: double-entry sums, pending reservations matching the unresolved pending transfers,
// balance limits, closed flags, and that results agree with lookups. The seed is printed on
// failure; rerun one with --gtest_filter and TB_SEED=<seed>.

#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "client_core/bytes.h"
#include "client_core/multi_batch.h"
#include "client_core/operation.h"
#include "client_core/request_validation.h"
#include "client_core/testing/events.h"
#include "client_core/types.h"
#include "devcluster/state_machine.h"
#include "devcluster/testing/state_machine_client.h"
#include "gtest/gtest.h"

namespace tb::devcluster {
namespace {

using client_core::testing::MakeAccount;
using client_core::testing::MakeTransfer;
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

// Checks every invariant that must hold between requests. `created_open`: no account was
// created with the closed flag, so closed <=> an unresolved closing pending transfer.
void CheckInvariants(const Database& db, bool created_open = true) {
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
    if (created_open) {
      ASSERT_EQ((a.flags & af::kClosed) != 0, closed_by_pending.contains(i)) << "account " << index;
    } else if (closed_by_pending.contains(i)) {
      ASSERT_NE(a.flags & af::kClosed, 0) << "account " << index;
    }
  }
  ASSERT_EQ(debits_posted, credits_posted);
  ASSERT_EQ(debits_pending, credits_pending);
}

uint64_t BaseSeed() {
  const char* text = std::getenv("TB_SEED");
  return text != nullptr ? std::strtoull(text, nullptr, 10) : 20261122;
}

TEST(StateMachineRandom, LedgerInvariantsHoldUnderRandomBatches) {
  absl::flat_hash_map<ChangeEventType, int> kinds;
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
    for (const TransferRecord& record : machine.database().transfers()) kinds[record.event_type]++;
    kinds[ChangeEventType::kTwoPhaseExpired] +=
        static_cast<int>(machine.database().expiries().size());
  }
  // The workload must reach every kind of account event, or the checks above prove little.
  for (ChangeEventType type :
       {ChangeEventType::kSinglePhase, ChangeEventType::kTwoPhasePending,
        ChangeEventType::kTwoPhasePosted, ChangeEventType::kTwoPhaseVoided,
        ChangeEventType::kTwoPhaseExpired}) {
    EXPECT_GT(kinds[type], 0) << "no event of type " << static_cast<int>(type);
  }
}

// Arbitrary field values from small domains that hit the edges: 0, 1, small, the maxima.
class RawEvents {
 public:
  explicit RawEvents(uint64_t seed) : random_(seed) {}

  uint64_t Pick(uint64_t bound) {
    return std::uniform_int_distribution<uint64_t>(0, bound - 1)(random_);
  }
  u128 Id() {
    const uint64_t choice = Pick(10);
    return choice == 0 ? 0 : choice == 1 ? kU128Max : choice - 1;
  }
  u128 Amount() {
    const uint64_t choice = Pick(6);
    return choice == 0 ? kU128Max : choice == 1 ? kU128Max - Pick(3) : Pick(20);
  }
  uint16_t Flags(uint16_t all) {
    uint16_t flags = static_cast<uint16_t>(Pick(uint64_t{all} + 1)) & all;
    if (Pick(30) == 0) flags |= static_cast<uint16_t>(1u << (10 + Pick(6)));  // Padding bits.
    return flags;
  }
  // An imported event's timestamp: mostly just below the clock (valid when increasing).
  uint64_t Timestamp(uint64_t now) {
    const uint64_t choice = Pick(10);
    if (choice == 0) return 0;
    if (choice == 1) return now + Pick(3);
    if (choice == 2) return (uint64_t{1} << 63) + Pick(2) - 1;
    if (choice == 3) return Pick(50);
    return now + 1 - Pick(now < 20 ? now + 1 : 20);
  }

  // Mostly well-formed events (so that objects get created and the deeper checks run), with
  // every field sometimes at an edge.
  Account NextAccount(uint64_t now) {
    Account a{};
    a.id = Pick(10) == 0 ? Id() : 1 + Pick(8);
    if (Pick(30) == 0) a.debits_posted = 1;
    a.user_data_64 = Pick(2);
    a.reserved = Pick(30) == 0 ? 1 : 0;
    a.ledger = Pick(10) == 0 ? static_cast<uint32_t>(Pick(3)) : 1;
    a.code = Pick(10) == 0 ? static_cast<uint16_t>(Pick(3)) : 1;
    a.flags = Pick(4) == 0 ? Flags(af::kAll) : static_cast<uint16_t>(Pick(2) * af::kHistory);
    a.timestamp = (a.flags & af::kImported) != 0 ? Timestamp(now) : Pick(20) == 0 ? 1 : 0;
    return a;
  }
  Transfer NextTransfer(uint64_t now) {
    static constexpr uint16_t kShapes[] = {
        0, tf::kPending, tf::kPostPendingTransfer, tf::kVoidPendingTransfer, tf::kBalancingDebit,
        tf::kBalancingCredit, tf::kPending | tf::kClosingDebit, tf::kPending | tf::kClosingCredit,
        tf::kLinked, tf::kImported, tf::kPending | tf::kImported};
    Transfer t{};
    // Mostly fresh ids; sometimes a retry of an earlier one, or an edge value.
    t.id = Pick(10) == 0 ? Id() : Pick(5) == 0 ? 1 + Pick(next_transfer_id_) : next_transfer_id_++;
    t.flags = Pick(6) == 0 ? Flags(tf::kAll) : kShapes[Pick(std::size(kShapes))];
    if (Pick(8) == 0) t.flags |= tf::kLinked;
    const bool resolves = (t.flags & (tf::kPostPendingTransfer | tf::kVoidPendingTransfer)) != 0;
    t.debit_account_id = resolves && Pick(2) == 0 ? 0 : Pick(10) == 0 ? Id() : 1 + Pick(8);
    t.credit_account_id = resolves && Pick(2) == 0 ? 0 : Pick(10) == 0 ? Id() : 1 + Pick(8);
    t.amount = Amount();
    t.pending_id =
        resolves ? (Pick(10) == 0 ? Id() : 1 + Pick(next_transfer_id_)) : (Pick(20) == 0 ? 1 : 0);
    t.user_data_32 = static_cast<uint32_t>(Pick(2));
    t.timeout = (t.flags & tf::kPending) != 0 && Pick(2) == 0 ? static_cast<uint32_t>(Pick(3))
                                                               : (Pick(30) == 0 ? 1 : 0);
    t.ledger = resolves && Pick(2) == 0 ? 0 : (Pick(10) == 0 ? static_cast<uint32_t>(Pick(3)) : 1);
    t.code = resolves && Pick(2) == 0 ? 0 : (Pick(10) == 0 ? static_cast<uint16_t>(Pick(3)) : 1);
    t.timestamp = (t.flags & tf::kImported) != 0 ? Timestamp(now) : (Pick(30) == 0 ? 1 : 0);
    return t;
  }

 private:
  std::mt19937_64 random_;
  uint64_t next_transfer_id_ = 1;
};

// One random body for `info` (batches of arbitrary events, ids or filters).
std::vector<uint8_t> RandomBody(RawEvents& raw, const OperationInfo& info, uint64_t now) {
  const uint64_t batch_count = info.multi_batch ? 1 + raw.Pick(3) : 1;
  std::vector<std::vector<uint8_t>> batches(batch_count);
  for (std::vector<uint8_t>& batch : batches) {
    const bool query = info.shape == ResultShape::kQuery;
    const uint64_t count = query ? 1 : raw.Pick(12);
    for (uint64_t i = 0; i < count; i++) {
      if (info.event_size == sizeof(u128)) {
        AppendStruct(&batch, raw.Id());
      } else if (info.operation == Operation::kCreateAccounts ||
                 info.operation == Operation::kDeprecatedCreateAccountsSparse ||
                 info.operation == Operation::kDeprecatedCreateAccountsUnbatched) {
        AppendStruct(&batch, raw.NextAccount(now));
      } else if (info.operation == Operation::kCreateTransfers ||
                 info.operation == Operation::kDeprecatedCreateTransfersSparse ||
                 info.operation == Operation::kDeprecatedCreateTransfersUnbatched) {
        AppendStruct(&batch, raw.NextTransfer(now));
      } else {
        // A filter: mostly zeros with a few small or extreme fields.
        std::vector<uint8_t> filter(info.event_size, 0);
        for (int k = 0; k < 4; k++) {
          filter[raw.Pick(info.event_size)] = static_cast<uint8_t>(raw.Pick(4) == 0 ? 0xFF : raw.Pick(4));
        }
        batch.insert(batch.end(), filter.begin(), filter.end());
      }
    }
  }
  if (!info.multi_batch) return batches[0];
  std::vector<std::span<const uint8_t>> spans(batches.begin(), batches.end());
  return EncodeMultiBatch(info.event_size, spans);
}

TEST(StateMachineRandom, ArbitraryValidBodiesNeverBreakInvariants) {
  const uint32_t batch_size_limit = kBatchSizeLimitMax;
  for (uint64_t round = 0; round < 20; round++) {
    const uint64_t seed = BaseSeed() + 1000 + round;
    SCOPED_TRACE("seed " + std::to_string(seed));
    RawEvents raw(seed);
    StateMachine machine({.batch_size_limit = batch_size_limit});
    for (int request = 0; request < 300; request++) {
      // Half of the requests create transfers; the rest is any operation.
      const auto operation = static_cast<uint8_t>(raw.Pick(2) == 0 ? 147 : 129 + raw.Pick(19));
      const OperationInfo* info = FindOperation(operation);
      ASSERT_NE(info, nullptr);
      const std::vector<uint8_t> body = RandomBody(raw, *info, machine.timestamp());
      if (!ValidateRequestBody(*info, body, batch_size_limit).ok()) continue;
      // A wall clock well ahead of the counter leaves room for imported timestamps.
      const ExecuteResult reply =
          machine.Execute(operation, body, /*now_ns=*/machine.timestamp() + raw.Pick(1000));
      ASSERT_GT(reply.timestamp, 0u);
      if (info->multi_batch) {
        absl::StatusOr<MultiBatchView> decoded = DecodeMultiBatch(reply.body, info->result_size);
        ASSERT_TRUE(decoded.ok()) << "request " << request << ": " << decoded.status();
      } else {
        ASSERT_EQ(reply.body.size() % info->result_size, 0u);
      }
      ASSERT_NO_FATAL_FAILURE(CheckInvariants(machine.database(), /*created_open=*/false))
          << "request " << request << " operation " << int{operation};
      if (raw.Pick(10) == 0) machine.Tick(machine.timestamp() + raw.Pick(3) * kSecond);
    }
    // Not vacuous: the workload gets objects created (the seeds are fixed, so this is stable).
    EXPECT_GT(machine.database().account_count(), 0u);
    EXPECT_GT(machine.database().transfer_count(), 0u);
  }
}

}  // namespace
}  // namespace tb::devcluster
