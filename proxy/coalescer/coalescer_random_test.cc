// Randomised end-to-end check of the coalescer without sockets: several threads submit hundreds
// of mixed calls (valid and invalid, linked chains that fail, open chains, ordering keys) while a
// fake cluster with two "sessions" takes messages, checks them as a replica would, executes them
// on the dev cluster's state machine and answers in random order. Every caller must get exactly
// its own results, equal to executing the same batches one by one, in the order the cluster
// applied them, on a second state machine.
//
// Some calls carry deadlines on a fake clock that the cluster advances per message: a caller told
// not_applied must never be applied, one told unknown must be applied.
//
// Seeds 1..6 run by default; TB_COALESCER_SEED=<n> runs one chosen seed.
#include <cstddef>
#include <cstdlib>
#include <map>
#include <random>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "client_core/bytes.h"
#include "client_core/constants.h"
#include "client_core/multi_batch.h"
#include "client_core/outcome.h"
#include "client_core/request_validation.h"
#include "client_core/testing/events.h"
#include "client_core/testing/fake_clock.h"
#include "client_core/types.h"
#include "devcluster/state_machine.h"
#include "gtest/gtest.h"
#include "proxy/coalescer/coalescer.h"
#include "proxy/testing/coalescer_helpers.h"

namespace tb::proxy {
namespace {

constexpr int kThreadCount = 4;
constexpr int kCallsPerThread = 120;
constexpr uint64_t kAccountIdMax = 120;
constexpr uint64_t kTagBase = uint64_t{1} << 62;  // Far above every timestamp the machine issues.

struct Call {
  uint8_t operation = 0;
  std::vector<uint8_t> events;
  bool valid = true;
  uint64_t ordering_key = 0;
  absl::Time deadline = absl::InfiniteFuture();
  int thread = 0;
  int sequence = 0;  // Submission order within its thread.
  // Filled by the callback.
  int answer_count = 0;
  absl::StatusOr<SubmitResult> result = absl::UnknownError("not answered");
};

// One batch as the fake cluster applied it.
struct AppliedBatch {
  uint8_t operation;
  std::vector<uint8_t> events;
  uint64_t message_timestamp;
  uint64_t message_index;
};

class CallGenerator {
 public:
  CallGenerator(uint64_t seed, uint32_t batch_size_limit)
      : random_(seed), batch_size_limit_(batch_size_limit) {}

  // `tag` makes every non-empty batch unique (a field that does not change the results), so the
  // fake cluster can tell whose batch it applied.
  Call Next(uint64_t tag) {
    const int kind = Uniform(0, 99);
    if (kind < 30) return Creates(146, tag);
    if (kind < 58) return Creates(147, tag);
    if (kind < 72) return Lookup(tag);
    if (kind < 78) return QueryAccounts(tag);
    if (kind < 84) return AccountTransfers(tag);
    if (kind < 89) return ChangeEvents(tag);
    return Invalid();
  }

 private:
  int Uniform(int low, int high) { return std::uniform_int_distribution<int>(low, high)(random_); }

  uint32_t EventCount(uint8_t operation) {
    const uint32_t event_max = EventMax(*FindOperation(operation), batch_size_limit_);
    if (Uniform(0, 19) == 0) return event_max;
    return static_cast<uint32_t>(Uniform(0, static_cast<int>(std::min<uint32_t>(12, event_max))));
  }

  // Linked chains: some fail on a zero id inside, some stay open at the end of the batch.
  void Link(std::vector<uint16_t>& flags, std::vector<bool>& zero_id, uint16_t linked) {
    const size_t count = flags.size();
    if (count < 2 || Uniform(0, 3) != 0) return;
    const size_t start = static_cast<size_t>(Uniform(0, static_cast<int>(count) - 2));
    const size_t end =
        static_cast<size_t>(Uniform(static_cast<int>(start) + 1, static_cast<int>(count) - 1));
    for (size_t i = start; i < end; i++) flags[i] |= linked;
    if (Uniform(0, 2) == 0)
      zero_id[static_cast<size_t>(Uniform(static_cast<int>(start), static_cast<int>(end)))] = true;
    if (Uniform(0, 4) == 0) flags[count - 1] |= linked;  // Open chain.
  }

  Call Creates(uint8_t operation, uint64_t tag) {
    Call call{.operation = operation};
    const uint32_t count = EventCount(operation);
    std::vector<uint16_t> flags(count, 0);
    std::vector<bool> zero_id(count, false);
    Link(flags, zero_id, operation == 146 ? account_flags::kLinked : transfer_flags::kLinked);
    for (uint32_t i = 0; i < count; i++) {
      if (operation == 146) {
        Account account = client_core::testing::MakeAccount(
            zero_id[i] ? 0 : static_cast<uint64_t>(Uniform(1, kAccountIdMax)), flags[i]);
        account.user_data_64 = tag;
        AppendStruct(&call.events, account);
      } else {
        Transfer transfer{};
        transfer.id = zero_id[i] ? 0 : static_cast<uint64_t>(Uniform(1, 5000));
        transfer.debit_account_id = static_cast<uint64_t>(Uniform(1, kAccountIdMax));
        transfer.credit_account_id = static_cast<uint64_t>(Uniform(1, kAccountIdMax));
        transfer.amount = static_cast<uint64_t>(Uniform(1, 100));
        transfer.ledger = 1;
        transfer.code = 1;
        transfer.flags = flags[i];
        transfer.user_data_64 = tag;
        AppendStruct(&call.events, transfer);
      }
    }
    return call;
  }

  Call Lookup(uint64_t tag) {
    Call call{.operation = 140};
    const int count = Uniform(0, 6);
    for (int i = 0; i < count; i++) {
      AppendStruct(&call.events, u128{static_cast<uint64_t>(Uniform(1, kAccountIdMax))});
    }
    AppendStruct(&call.events, MakeU128(kTagBase, tag));  // Never exists.
    return call;
  }

  Call QueryAccounts(uint64_t tag) {
    QueryFilter filter{};
    filter.ledger = 1;
    filter.limit = static_cast<uint32_t>(Uniform(0, 40));
    filter.flags = Uniform(0, 1) == 0 ? 0 : query_filter_flags::kReversed;
    filter.timestamp_max = kTagBase + tag;
    Call call{.operation = 144};
    AppendStruct(&call.events, filter);
    return call;
  }

  Call AccountTransfers(uint64_t tag) {
    AccountFilter filter{};
    filter.account_id = static_cast<uint64_t>(Uniform(1, kAccountIdMax));
    filter.limit = static_cast<uint32_t>(Uniform(0, 20));
    filter.flags = account_filter_flags::kDebits | account_filter_flags::kCredits;
    filter.timestamp_max = kTagBase + tag;
    Call call{.operation = 142};
    AppendStruct(&call.events, filter);
    return call;
  }

  Call ChangeEvents(uint64_t tag) {
    ChangeEventsFilter filter{};
    filter.limit = static_cast<uint32_t>(Uniform(0, 10));
    filter.timestamp_max = kTagBase + tag;
    Call call{.operation = 137};
    AppendStruct(&call.events, filter);
    return call;
  }

  Call Invalid() {
    switch (Uniform(0, 4)) {
      case 0:
        return Call{.operation = 128, .valid = false};
      case 1:
        return Call{.operation = 139, .events = std::vector<uint8_t>(128, 0), .valid = false};
      case 2:
        return Call{.operation = 146, .events = std::vector<uint8_t>(100, 0), .valid = false};
      case 3:
        return Call{.operation = 144, .events = std::vector<uint8_t>(128, 0), .valid = false};
      default: {
        const uint32_t too_many = EventMax(*FindOperation(147), batch_size_limit_) + 1;
        return Call{
            .operation = 147, .events = std::vector<uint8_t>(too_many * 128, 0), .valid = false};
      }
    }
  }

  std::mt19937_64 random_;
  uint32_t batch_size_limit_;
};

// Two sessions: takes up to two messages, answers one of those in flight at random.
class FakeCluster {
 public:
  FakeCluster(Coalescer& coalescer, client_core::testing::FakeClock& clock,
              uint32_t batch_size_limit, uint64_t seed)
      : coalescer_(coalescer),
        clock_(clock),
        batch_size_limit_(batch_size_limit),
        machine_({.batch_size_limit = batch_size_limit}),
        random_(seed) {}

  void Wake() {
    absl::MutexLock lock(&mutex_);
    wake_generation_++;
  }
  void CallAnswered() {
    absl::MutexLock lock(&mutex_);
    answered_++;
  }

  // Runs until `call_count` callers were answered.
  void Run(int call_count) {
    std::vector<pool::OutgoingMessage> in_flight;
    for (;;) {
      uint64_t generation = 0;
      {
        absl::MutexLock lock(&mutex_);
        if (answered_ == call_count && in_flight.empty()) return;
        generation = wake_generation_;
      }
      while (in_flight.size() < 2) {
        std::optional<pool::OutgoingMessage> message = coalescer_.TakeMessage(batch_size_limit_);
        if (!message.has_value()) break;
        in_flight.push_back(std::move(*message));
      }
      if (!in_flight.empty()) {
        const size_t index =
            std::uniform_int_distribution<size_t>(0, in_flight.size() - 1)(random_);
        pool::OutgoingMessage message = std::move(in_flight[index]);
        in_flight.erase(in_flight.begin() + static_cast<std::ptrdiff_t>(index));
        // Each message takes 1..4 ms to commit: some deadlines pass while queued, some while
        // in flight.
        clock_.Advance(absl::Milliseconds(std::uniform_int_distribution<int>(1, 4)(random_)));
        coalescer_.ExpireDeadlines(clock_.Now());
        Execute(message);
        continue;
      }
      absl::MutexLock lock(&mutex_);
      auto changed = [this, generation, call_count]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) {
        return wake_generation_ != generation || answered_ == call_count;
      };
      mutex_.Await(absl::Condition(&changed));
    }
  }

  const std::vector<AppliedBatch>& applied() const { return applied_; }
  int message_count() const { return message_count_; }
  int multi_batch_message_count() const { return multi_batch_message_count_; }

 private:
  void Execute(pool::OutgoingMessage& message) {
    const OperationInfo* info = FindOperation(message.operation);
    ASSERT_NE(info, nullptr);
    ASSERT_TRUE(IsForwardableOperation(message.operation));
    ASSERT_LE(message.body.size(), batch_size_limit_);
    // What a replica checks; failing it would evict the session.
    const absl::Status valid = ValidateRequestBody(*info, message.body, batch_size_limit_);
    ASSERT_TRUE(valid.ok()) << valid;
    devcluster::ExecuteResult result = machine_.Execute(message.operation, message.body, 0);
    const uint64_t index = static_cast<uint64_t>(message_count_++);
    if (info->multi_batch) {
      absl::StatusOr<MultiBatchView> batches = DecodeMultiBatch(message.body, info->event_size);
      ASSERT_TRUE(batches.ok());
      if (batches->size() > 1) multi_batch_message_count_++;
      for (std::span<const uint8_t> batch : *batches) {
        applied_.push_back(
            {message.operation, {batch.begin(), batch.end()}, result.timestamp, index});
      }
    } else {
      applied_.push_back({message.operation, message.body, result.timestamp, index});
    }
    std::move(message.on_done)(
        pool::ClusterReply{.op = index + 1, .timestamp = result.timestamp, .body = result.body});
  }

  Coalescer& coalescer_;
  client_core::testing::FakeClock& clock_;
  const uint32_t batch_size_limit_;
  devcluster::StateMachine machine_;
  std::mt19937_64 random_;
  std::vector<AppliedBatch> applied_;
  int message_count_ = 0;
  int multi_batch_message_count_ = 0;

  absl::Mutex mutex_;
  uint64_t wake_generation_ ABSL_GUARDED_BY(mutex_) = 0;
  int answered_ ABSL_GUARDED_BY(mutex_) = 0;
};

// The results of one batch executed alone.
std::vector<uint8_t> ExecuteAlone(devcluster::StateMachine& machine, uint8_t operation,
                                  const std::vector<uint8_t>& events) {
  const OperationInfo& info = *FindOperation(operation);
  if (!info.multi_batch) return machine.Execute(operation, events, 0).body;
  const std::span<const uint8_t> batch(events);
  const std::vector<uint8_t> body = EncodeMultiBatch(info.event_size, std::span(&batch, 1));
  const std::vector<uint8_t> reply = machine.Execute(operation, body, 0).body;
  absl::StatusOr<MultiBatchView> results = DecodeMultiBatch(reply, info.result_size);
  if (!results.ok() || results->size() != 1) return {0xEE};  // Never equals a caller's results.
  return {(*results)[0].begin(), (*results)[0].end()};
}

// Timestamps are the one thing coalescing changes (PROTOCOL.md §14.11): a request consumes one
// timestamp of its own besides its events', so k batches in one message and k requests number
// their objects differently. Results are compared with every timestamp field zeroed; the order
// of the timestamps is checked separately.
std::vector<uint8_t> WithoutTimestamps(uint8_t operation, std::vector<uint8_t> results) {
  std::vector<size_t> offsets;
  uint32_t size = 0;
  switch (operation) {
    case 146:
    case 147:
      size = sizeof(CreateResult);
      offsets = {offsetof(CreateResult, timestamp)};
      break;
    case 140:
    case 144:
      size = sizeof(Account);
      offsets = {offsetof(Account, timestamp)};
      break;
    case 142:
      size = sizeof(Transfer);
      offsets = {offsetof(Transfer, timestamp)};
      break;
    case 137:
      size = sizeof(ChangeEvent);
      offsets = {offsetof(ChangeEvent, timestamp), offsetof(ChangeEvent, transfer_timestamp),
                 offsetof(ChangeEvent, debit_account_timestamp),
                 offsetof(ChangeEvent, credit_account_timestamp)};
      break;
    default:
      ADD_FAILURE() << "unexpected operation " << int{operation};
      return results;
  }
  for (size_t element = 0; element + size <= results.size(); element += size) {
    for (size_t offset : offsets) std::memset(results.data() + element + offset, 0, 8);
  }
  return results;
}

// Checks every answer against the batches the cluster applied, replayed one by one.
void VerifyAgainstReplay(const std::vector<Call>& calls, const FakeCluster& cluster,
                         uint32_t batch_size_limit, uint64_t seed) {
  // Who owns each applied batch: non-empty batches are unique by their tag; empty create
  // batches are interchangeable (no results). A call answered kDeadlineExceeded must be applied
  // when its outcome is unknown (the cluster executes every message) and never when not_applied.
  std::map<std::pair<uint8_t, std::vector<uint8_t>>, const Call*> owners;
  std::map<std::pair<uint8_t, std::vector<uint8_t>>, const Call*> never_applied;
  int empty_calls_applied = 0;
  int expired_count[2] = {0, 0};  // Not applied, unknown.
  for (const Call& call : calls) {
    ASSERT_EQ(call.answer_count, 1);
    if (!call.valid) {
      EXPECT_EQ(call.result.status().code(), absl::StatusCode::kInvalidArgument);
      continue;
    }
    bool applied = true;
    if (!call.result.ok()) {
      ASSERT_EQ(call.result.status().code(), absl::StatusCode::kDeadlineExceeded)
          << call.result.status();
      ASSERT_NE(call.deadline, absl::InfiniteFuture());
      applied = GetOutcome(call.result.status()) == Outcome::kUnknown;
      expired_count[applied ? 1 : 0]++;
    }
    if (call.events.empty()) {
      if (applied) empty_calls_applied++;
      if (call.result.ok()) EXPECT_TRUE(call.result->results.empty());
      continue;
    }
    auto& table = applied ? owners : never_applied;
    ASSERT_TRUE(table.emplace(std::pair(call.operation, call.events), &call).second);
  }

  devcluster::StateMachine replay({.batch_size_limit = batch_size_limit});
  std::map<int, int> last_sequence_by_key;
  int empty_applied = 0;
  uint64_t last_created_timestamp = 0;
  size_t owned_applied = 0;
  for (const AppliedBatch& batch : cluster.applied()) {
    const std::vector<uint8_t> alone = ExecuteAlone(replay, batch.operation, batch.events);
    if (batch.events.empty()) {
      empty_applied++;
      EXPECT_TRUE(alone.empty());
      continue;
    }
    ASSERT_EQ(never_applied.count(std::pair(batch.operation, batch.events)), 0u)
        << "a call answered not_applied was applied";
    auto owner = owners.find(std::pair(batch.operation, batch.events));
    ASSERT_NE(owner, owners.end()) << "a batch nobody submitted was applied";
    const Call& call = *owner->second;
    owned_applied++;
    if (call.ordering_key != 0) {
      const int key = static_cast<int>(call.ordering_key);
      auto last = last_sequence_by_key.find(key);
      if (last != last_sequence_by_key.end()) EXPECT_LT(last->second, call.sequence);
      last_sequence_by_key[key] = call.sequence;
    }
    if (!call.result.ok()) continue;  // Answered early (in flight); its results were dropped.
    EXPECT_EQ(WithoutTimestamps(call.operation, call.result->results),
              WithoutTimestamps(call.operation, alone))
        << "operation " << int{call.operation} << ", thread " << call.thread << " call "
        << call.sequence;
    EXPECT_EQ(call.result->timestamp, batch.message_timestamp);
    if (call.operation == 146 || call.operation == 147) {
      // Objects created in application order carry increasing timestamps.
      const std::vector<uint8_t>& results = call.result->results;
      for (size_t index = 0; index < results.size() / sizeof(CreateResult); index++) {
        const CreateResult result = StructAt<CreateResult>(results, index);
        if (result.status != 0) continue;
        EXPECT_GT(result.timestamp, last_created_timestamp);
        last_created_timestamp = result.timestamp;
      }
    }
  }
  EXPECT_EQ(owned_applied, owners.size()) << "every applied call's batch is applied exactly once";
  EXPECT_EQ(empty_applied, empty_calls_applied);
  ::testing::Test::RecordProperty(absl::StrCat("seed_", seed, "_expired_queued"), expired_count[0]);
  ::testing::Test::RecordProperty(absl::StrCat("seed_", seed, "_expired_in_flight"),
                                  expired_count[1]);
}

void RunSeed(uint64_t seed) {
  SCOPED_TRACE(absl::StrCat("seed=", seed, " (rerun with TB_COALESCER_SEED=", seed, ")"));
  const uint32_t limits[] = {kBatchSizeLimitMax, 32'512, kBatchSizeLimitMin};
  const uint32_t batch_size_limit = limits[seed % 3];

  client_core::testing::FakeClock clock;
  const absl::Time start = clock.Now();
  // Generate every call up front, so the calls do not depend on thread timing.
  std::vector<Call> calls;
  for (int thread = 0; thread < kThreadCount; thread++) {
    CallGenerator generator(seed * 1000 + static_cast<uint64_t>(thread), batch_size_limit);
    std::mt19937_64 keys(seed * 7919 + static_cast<uint64_t>(thread));
    for (int i = 0; i < kCallsPerThread; i++) {
      Call call = generator.Next(calls.size() + 1);
      call.thread = thread;
      call.sequence = i;
      call.ordering_key = keys() % 2 == 0 ? static_cast<uint64_t>(thread) + 1 : 0;
      if (keys() % 8 == 0) call.deadline = start + absl::Milliseconds(1 + keys() % 400);
      calls.push_back(std::move(call));
    }
  }

  CoalescerOptions options;
  options.clock = &clock;
  Coalescer coalescer(std::move(options));
  ASSERT_TRUE(coalescer.SetBatchSizeLimit(batch_size_limit));
  FakeCluster cluster(coalescer, clock, batch_size_limit, seed);
  coalescer.SetWake([&cluster] { cluster.Wake(); });

  absl::Mutex results_mutex;
  std::vector<std::thread> submitters;
  for (int thread = 0; thread < kThreadCount; thread++) {
    submitters.emplace_back([&, thread] {
      for (Call& call : calls) {
        if (call.thread != thread) continue;
        coalescer.Submit({.operation = call.operation, .events = call.events},
                         {.deadline = call.deadline, .ordering_key = call.ordering_key},
                         [&call, &cluster, &results_mutex](absl::StatusOr<SubmitResult> result) {
                           {
                             absl::MutexLock lock(&results_mutex);
                             call.answer_count++;
                             call.result = std::move(result);
                           }
                           cluster.CallAnswered();
                         });
      }
    });
  }
  cluster.Run(static_cast<int>(calls.size()));
  for (std::thread& submitter : submitters) submitter.join();

  VerifyAgainstReplay(calls, cluster, batch_size_limit, seed);
  EXPECT_TRUE(coalescer.counts().in_flight_messages == 0 && coalescer.counts().queued_calls == 0);
  // Not a correctness property, but the test would prove little if nothing was coalesced.
  ::testing::Test::RecordProperty(absl::StrCat("seed_", seed, "_messages"),
                                  cluster.message_count());
  ::testing::Test::RecordProperty(absl::StrCat("seed_", seed, "_coalesced"),
                                  cluster.multi_batch_message_count());
}

TEST(CoalescerRandomized, EveryCallerGetsItsOwnResultsAsIfAppliedOneByOne) {
  if (const char* chosen = std::getenv("TB_COALESCER_SEED")) {
    RunSeed(std::strtoull(chosen, nullptr, 10));
    return;
  }
  for (uint64_t seed = 1; seed <= 6; seed++) {
    RunSeed(seed);
    if (::testing::Test::HasFatalFailure()) return;
  }
}

}  // namespace
}  // namespace tb::proxy
