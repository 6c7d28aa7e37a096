// Coalescer -> SessionPool -> dev cluster under faults: a caller's open chain or over-limit call
// stays its own, evictions and primary changes under load (every caller answered, results or
// typed errors with an outcome, then recovery), bounded overload (immediate refusals, bounded
// queues, every admitted call answered) and deadlines (queued: not_applied; in flight on a
// paused cluster: unknown, and the late results are counted and applied).
#include <algorithm>
#include <atomic>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client_core/bytes.h"
#include "client_core/multi_batch.h"
#include "client_core/outcome.h"
#include "client_core/testing/events.h"
#include "client_core/testing/fake_clock.h"
#include "client_core/types.h"
#include "gtest/gtest.h"
#include "proxy/testing/coalescer_helpers.h"
#include "tests/integration/harness.h"
#include "tests/integration/workload.h"

namespace tb::integration {
namespace {

using client_core::testing::MakeAccount;

constexpr uint8_t kCreateAccounts = static_cast<uint8_t>(Operation::kCreateAccounts);
constexpr uint8_t kLookupAccounts = static_cast<uint8_t>(Operation::kLookupAccounts);

proxy::SubmitRequest CreateAccounts(std::vector<Account> accounts) {
  return {.operation = kCreateAccounts, .events = StructsBytes(accounts)};
}
proxy::SubmitRequest LookupAccounts(std::vector<u128> ids) {
  return {.operation = kLookupAccounts, .events = StructsBytes(ids)};
}

std::vector<CreateResult> CreateResults(const proxy::SubmitResult& result) {
  std::vector<CreateResult> results(result.results.size() / sizeof(CreateResult));
  if (!results.empty()) std::memcpy(results.data(), result.results.data(), result.results.size());
  return results;
}

// The ids a lookup found.
std::vector<u128> FoundIds(const proxy::SubmitResult& result) {
  std::vector<u128> ids;
  for (size_t offset = 0; offset + sizeof(Account) <= result.results.size();
       offset += sizeof(Account)) {
    Account account;
    std::memcpy(&account, result.results.data() + offset, sizeof(account));
    ids.push_back(account.id);
  }
  return ids;
}

// One call, waited for.
absl::StatusOr<proxy::SubmitResult> Call(Harness& harness, proxy::SubmitRequest request) {
  Answers answer(1);
  answer.Submit(harness.coalescer(), 0, std::move(request));
  if (!answer.WaitAnswered(1)) return absl::DeadlineExceededError("no answer");
  return *answer.Get(0).result;
}

uint32_t CreatedCount(const absl::StatusOr<proxy::SubmitResult>& result) {
  if (!result.ok()) return 0;
  uint32_t created = 0;
  for (const CreateResult& r : CreateResults(*result)) {
    created += r.status == static_cast<uint32_t>(CreateAccountStatus::kCreated);
  }
  return created;
}

TEST(IsolationTest, OpenChainAndOverLimitCallStayWithTheirCallerAndEvictNoSession) {
  Harness harness({.sessions = 1, .session_budget = 1});
  ASSERT_TRUE(harness.WaitRegistered(1));
  // Hold the only session busy, so the next calls share one message.
  harness.server().Pause();
  Answers answers(4);
  answers.Submit(harness.coalescer(), 0, LookupAccounts({1}));
  ASSERT_TRUE(harness.spy().WaitTaken(1));
  std::vector<Account> open_chain = {MakeAccount(11, account_flags::kLinked),
                                     MakeAccount(12, account_flags::kLinked)};
  answers.Submit(harness.coalescer(), 1, CreateAccounts(open_chain));
  answers.Submit(harness.coalescer(), 2, CreateAccounts({MakeAccount(21), MakeAccount(22)}));
  answers.Submit(harness.coalescer(), 3,
                 CreateAccounts(std::vector<Account>(8190, MakeAccount(31))));
  ASSERT_TRUE(answers.WaitCallers({3}));
  EXPECT_TRUE(answers.Get(3).inline_answer);
  EXPECT_EQ(answers.Get(3).result->status().code(), absl::StatusCode::kInvalidArgument);
  harness.server().Resume();
  ASSERT_TRUE(answers.WaitAnswered(4));

  // Callers 1 and 2 travelled in one message, as two batches.
  const std::vector<SpiedMessage> messages = harness.spy().messages();
  ASSERT_EQ(messages.size(), 2u);
  absl::StatusOr<MultiBatchView> batches = DecodeMultiBatch(messages[1].body, sizeof(Account));
  ASSERT_TRUE(batches.ok()) << batches.status();
  EXPECT_EQ(batches->size(), 2u);

  ASSERT_TRUE(answers.Get(1).result->ok());
  const std::vector<CreateResult> open = CreateResults(**answers.Get(1).result);
  ASSERT_EQ(open.size(), 2u);
  EXPECT_EQ(open[0].status, static_cast<uint32_t>(CreateAccountStatus::kLinkedEventFailed));
  EXPECT_EQ(open[1].status, static_cast<uint32_t>(CreateAccountStatus::kLinkedEventChainOpen));
  ASSERT_TRUE(answers.Get(2).result->ok());
  EXPECT_EQ(CreatedCount(*answers.Get(2).result), 2u);

  absl::StatusOr<proxy::SubmitResult> found = Call(harness, LookupAccounts({11, 12, 21, 22, 31}));
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(FoundIds(*found), (std::vector<u128>{21, 22}));
  EXPECT_EQ(harness.pool_events().evicted.load(), 0u);
  EXPECT_EQ(harness.server().stats().evictions, 0u);
}

// Load in waves: each wave submits kWave single-account creates from 4 threads without waiting,
// then waits for all their answers. Runs until `done()` and at least `waves_min` waves, at most
// answers.size() calls. The account of call i is `first_id + i`. Returns the calls made.
constexpr uint32_t kWave = 200;
template <typename Done>
uint32_t RunLoad(Harness& harness, Answers& answers, uint64_t first_id, uint32_t waves_min,
                 std::atomic<uint32_t>& waves, Done done) {
  uint32_t calls = 0;
  while (calls + kWave <= answers.size() && (waves.load() < waves_min || !done())) {
    std::vector<std::thread> workers;
    for (uint32_t t = 0; t < 4; t++) {
      workers.emplace_back([&, t] {
        for (uint32_t i = calls + t; i < calls + kWave; i += 4) {
          answers.Submit(harness.coalescer(), i, CreateAccounts({MakeAccount(first_id + i)}));
        }
      });
    }
    for (std::thread& worker : workers) worker.join();
    calls += kWave;
    EXPECT_TRUE(answers.WaitAnswered(calls)) << answers.answered() << " of " << calls;
    waves++;
  }
  return calls;
}

// Every caller answered once: results, or a typed error with an outcome. Returns the errors.
uint32_t CheckAnswered(Answers& answers, uint32_t calls, std::vector<absl::StatusCode> allowed) {
  uint32_t errors = 0;
  for (size_t i = 0; i < calls; i++) {
    const Answers::Slot slot = answers.Get(i);
    EXPECT_EQ(slot.count, 1) << "caller " << i;
    if (!slot.result.has_value() || slot.result->ok()) continue;
    errors++;
    const absl::Status& status = slot.result->status();
    EXPECT_NE(std::find(allowed.begin(), allowed.end(), status.code()), allowed.end())
        << "caller " << i << ": " << status;
    EXPECT_TRUE(GetOutcome(status).has_value()) << "caller " << i << ": " << status;
  }
  return errors;
}

TEST(FaultsTest, EvictionsUnderLoadAnswerEveryCallerAndThePoolRecovers) {
  // The table holds the pool's 4 sessions and nothing more: every other client evicts one.
  Harness harness({.clients_max = 4,
                   .sessions = 4,
                   .session_budget = 8,
                   .keep_warm_interval = absl::Milliseconds(20)});
  ASSERT_TRUE(harness.WaitRegistered(4));
  Answers answers(40'000);
  std::vector<std::unique_ptr<RawClient>> others;
  std::atomic<uint32_t> waves{0};
  std::atomic<bool> intruded{false};
  std::thread intruders([&] {
    EXPECT_TRUE(PollUntil([&] { return waves.load() >= 1; }));  // Under load.
    for (int i = 0; i < 6; i++) {
      others.push_back(std::make_unique<RawClient>(harness.addresses()));
      EXPECT_TRUE(others.back()->WaitRegistered());
    }
    intruded = true;
  });
  // Load goes on until the pool has seen an eviction (the first intruder evicts one of its
  // sessions: the table held only those).
  const uint32_t calls = RunLoad(harness, answers, 100'000, 3, waves, [&] {
    return intruded.load() && harness.pool_events().evicted.load() > 0;
  });
  intruders.join();
  const uint32_t errors =
      CheckAnswered(answers, calls, {absl::StatusCode::kAborted});
  EXPECT_GT(harness.pool_events().evicted.load(), 0u);
  EXPECT_EQ(harness.pool_events().evicted_invalid.load(), 0u);

  // Recovery on its own: sessions registered again, and later calls all succeed. A replacement's
  // registration evicts the least recently committed entry of the table, which may be another
  // pool session that has not committed since the last intruder registered; that session learns
  // of it only from its next request (a keep-warm within 20 ms). So the pool has settled once all
  // 4 are registered and several keep-warm rounds pass without a new eviction.
  others.clear();
  ASSERT_TRUE(PollUntil([&] {
    if (!harness.WaitRegistered(4)) return false;
    const uint32_t evicted_before = harness.pool_events().evicted.load();
    absl::SleepFor(absl::Milliseconds(100));
    return harness.pool_events().evicted.load() == evicted_before && harness.WaitRegistered(4);
  }));
  for (uint64_t i = 0; i < 20; i++) {
    absl::StatusOr<proxy::SubmitResult> result =
        Call(harness, CreateAccounts({MakeAccount(900'000 + i)}));
    ASSERT_TRUE(result.ok()) << "call " << i << " after recovery: " << result.status();
    EXPECT_EQ(CreatedCount(result), 1u);
  }
  // The ledger agrees with every outcome: created accounts exist, not_applied ones do not.
  std::set<u128> found;
  for (uint32_t first = 0; first < calls; first += 8000) {
    std::vector<u128> ids;
    for (uint32_t i = first; i < std::min(calls, first + 8000); i++) ids.push_back(100'000 + i);
    absl::StatusOr<proxy::SubmitResult> lookup = Call(harness, LookupAccounts(ids));
    ASSERT_TRUE(lookup.ok()) << lookup.status();
    for (u128 id : FoundIds(*lookup)) found.insert(id);
  }
  for (uint32_t i = 0; i < calls; i++) {
    const Answers::Slot slot = answers.Get(i);
    if (slot.result->ok()) {
      EXPECT_EQ(CreatedCount(*slot.result), 1u) << "caller " << i;
      EXPECT_TRUE(found.contains(100'000 + i)) << "caller " << i << " created, not in the ledger";
    } else if (GetOutcome(slot.result->status()) == Outcome::kNotApplied) {
      EXPECT_FALSE(found.contains(100'000 + i)) << "caller " << i << " not_applied, but applied";
    }
  }
  std::map<std::string, uint32_t> codes;
  for (size_t i = 0; i < calls; i++) {
    const Answers::Slot slot = answers.Get(i);
    if (slot.count == 0) continue;
    const absl::Status& status = slot.result->status();
    std::optional<Outcome> outcome = GetOutcome(status);
    codes[absl::StrCat(absl::StatusCodeToString(status.code()), "/",
                       outcome ? (*outcome == Outcome::kUnknown ? "unknown" : "not_applied") : "-",
                       "/", status.message())]++;
  }
  for (const auto& [code, count] : codes) std::printf("  %s: %u\n", code.c_str(), count);
  std::printf("evictions %u, callers failed %u of %u, messages %zu\n",
              harness.pool_events().evicted.load(), errors, calls,
              harness.spy().messages().size());
}

TEST(FaultsTest, PrimaryChangesUnderLoadAnswerEveryCallerAndThePoolRecovers) {
  Harness harness({.replica_count = 3, .sessions = 4});
  ASSERT_TRUE(harness.WaitRegistered(4));
  Answers answers(40'000);
  std::atomic<uint32_t> waves{0};
  std::atomic<bool> changed{false};
  std::thread changer([&] {
    for (uint32_t change = 1; change <= 3; change++) {
      // Each change happens while the load runs (it stops only after the last one).
      EXPECT_TRUE(PollUntil([&] { return waves.load() >= 2 * change; }));
      harness.server().AdvanceView();
      harness.server().ResetConnections();
    }
    changed = true;
  });
  const uint32_t calls =
      RunLoad(harness, answers, 200'000, 8, waves, [&] { return changed.load(); });
  changer.join();
  const uint32_t errors = CheckAnswered(answers, calls, {});
  EXPECT_EQ(errors, 0u) << "a primary change loses no session: every call gets its results";
  EXPECT_EQ(harness.server().view(), 3u);
  EXPECT_EQ(harness.pool_events().evicted.load(), 0u);
  for (uint64_t i = 0; i < 20; i++) {
    absl::StatusOr<proxy::SubmitResult> result =
        Call(harness, CreateAccounts({MakeAccount(950'000 + i)}));
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(CreatedCount(result), 1u);
  }
  // Every caller's account exists exactly when its create said `created`.
  for (uint32_t i = 0; i < calls; i++) {
    EXPECT_EQ(CreatedCount(*answers.Get(i).result), 1u) << "caller " << i;
  }
}

TEST(OverloadTest, BoundedCoalescerRefusesAtOnceStaysBoundedAndAnswersEveryAdmittedCall) {
  constexpr uint64_t kQueuedEventsMax = 64;
  constexpr uint32_t kCallersMax = 48;
  Harness harness({.sessions = 1,
                   .session_budget = 1,
                   .queued_events_max = kQueuedEventsMax,
                   .callers_max = kCallersMax});
  ASSERT_TRUE(harness.WaitRegistered(1));
  harness.server().Pause();  // Nothing drains while the load arrives: the bounds must hold.
  constexpr uint32_t kCalls = 2000;
  Answers answers(kCalls);
  std::atomic<bool> bounded{true};
  std::vector<std::thread> workers;
  for (uint32_t t = 0; t < 4; t++) {
    workers.emplace_back([&, t] {
      for (uint32_t i = t; i < kCalls; i += 4) {
        std::vector<Account> accounts;
        for (uint32_t e = 0; e < 1 + i % 3; e++) accounts.push_back(MakeAccount(300'000 + i * 4 + e));
        answers.Submit(harness.coalescer(), i, CreateAccounts(accounts));
        const proxy::Coalescer::Counts counts = harness.coalescer().counts();
        if (counts.queued_events > kQueuedEventsMax ||
            counts.queued_calls + counts.in_flight_calls > kCallersMax) {
          bounded = false;
        }
      }
    });
  }
  for (std::thread& worker : workers) worker.join();
  EXPECT_TRUE(bounded.load()) << "queued counts exceeded a bound";
  std::vector<size_t> admitted;
  uint32_t refused = 0;
  for (size_t i = 0; i < kCalls; i++) {
    const Answers::Slot slot = answers.Get(i);
    if (slot.count == 1 && !slot.result->ok() &&
        slot.result->status().code() == absl::StatusCode::kResourceExhausted) {
      EXPECT_TRUE(slot.inline_answer) << "refusal of caller " << i << " was not immediate";
      refused++;
    } else {
      EXPECT_EQ(slot.count, 0) << "caller " << i << ": " << slot.result->status();
      admitted.push_back(i);
    }
  }
  EXPECT_GT(refused, 0u);
  EXPECT_LE(admitted.size(), kCallersMax);
  EXPECT_EQ(harness.coalescer_events().refused_bounds.load(), refused);
  harness.server().Resume();
  ASSERT_TRUE(answers.WaitCallers(admitted));
  for (size_t i : admitted) {
    const Answers::Slot slot = answers.Get(i);
    ASSERT_TRUE(slot.result->ok()) << "admitted caller " << i << ": " << slot.result->status();
    EXPECT_EQ(CreatedCount(*slot.result), 1 + i % 3) << "caller " << i;
  }
  // Once drained, the coalescer admits again.
  absl::StatusOr<proxy::SubmitResult> after = Call(harness, CreateAccounts({MakeAccount(7)}));
  ASSERT_TRUE(after.ok()) << after.status();
}

TEST(DeadlineTest, QueuedCallerExpiresNotAppliedInFlightCallerUnknownAndLateResultsCount) {
  client_core::testing::FakeClock clock;
  Harness harness({.sessions = 1, .session_budget = 1, .clock = &clock});
  ASSERT_TRUE(harness.WaitRegistered(1));
  harness.server().Pause();
  const absl::Time start = clock.Now();
  Answers answers(2);
  // Caller 0 goes out on the only session and is stuck there; caller 1 waits in the queue.
  answers.Submit(harness.coalescer(), 0, CreateAccounts({MakeAccount(41)}),
                 {.deadline = start + absl::Seconds(10)});
  ASSERT_TRUE(harness.spy().WaitTaken(1));
  answers.Submit(harness.coalescer(), 1, CreateAccounts({MakeAccount(42)}),
                 {.deadline = start + absl::Seconds(5)});
  EXPECT_EQ(harness.coalescer().counts().queued_calls, 1u);

  clock.Advance(absl::Seconds(6));
  harness.coalescer().ExpireDeadlines(clock.Now());
  ASSERT_TRUE(answers.WaitCallers({1}));
  EXPECT_EQ(answers.Get(1).result->status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(GetOutcome(answers.Get(1).result->status()), Outcome::kNotApplied);
  EXPECT_EQ(answers.Get(0).count, 0);

  clock.Advance(absl::Seconds(5));
  harness.coalescer().ExpireDeadlines(clock.Now());
  ASSERT_TRUE(answers.WaitCallers({0}));
  EXPECT_EQ(answers.Get(0).result->status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(GetOutcome(answers.Get(0).result->status()), Outcome::kUnknown);

  // The cluster comes back: the in-flight message commits, its result is counted as late.
  harness.server().Resume();
  ASSERT_TRUE(PollUntil([&] { return harness.coalescer_events().late_results.load() == 1; }));
  absl::StatusOr<proxy::SubmitResult> found = Call(harness, LookupAccounts({41, 42}));
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(FoundIds(*found), std::vector<u128>{41}) << "unknown was applied, not_applied was not";
  harness.Shutdown();
  EXPECT_EQ(answers.Get(0).count, 1);
  EXPECT_EQ(answers.Get(1).count, 1);
}

}  // namespace
}  // namespace tb::integration
