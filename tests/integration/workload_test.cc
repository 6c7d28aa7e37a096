// Many concurrent callers through Coalescer -> SessionPool (4 sessions) -> dev cluster over TCP:
// every caller gets exactly one answer with exactly its own results, and those results equal a
// replay of the cluster's messages, in commit order, into a second StateMachine (byte for byte,
// timestamps included); the same batches applied one at a time give the same statuses and the
// same objects. Invalid calls are refused alone and no session is ever evicted.
#include <algorithm>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "client_core/multi_batch.h"
#include "client_core/operation.h"
#include "client_core/types.h"
#include "devcluster/state_machine.h"
#include "gtest/gtest.h"
#include "tests/integration/harness.h"
#include "tests/integration/workload.h"

namespace tb::integration {
namespace {

constexpr uint32_t kThreads = 4;
constexpr uint32_t kCallers = 800;

bool IsCreateOperation(uint8_t operation) {
  return operation == static_cast<uint8_t>(Operation::kCreateAccounts) ||
         operation == static_cast<uint8_t>(Operation::kCreateTransfers);
}

// The batches of a request or reply body.
std::vector<std::span<const uint8_t>> Batches(uint8_t operation, std::span<const uint8_t> body,
                                              bool reply) {
  const OperationInfo& info = *FindOperation(operation);
  if (!info.multi_batch) return {body};
  absl::StatusOr<MultiBatchView> view =
      DecodeMultiBatch(body, reply ? info.result_size : info.event_size);
  EXPECT_TRUE(view.ok()) << view.status();
  if (!view.ok()) return {};
  return {view->begin(), view->end()};
}

std::string Key(uint8_t operation, std::span<const uint8_t> events) {
  return absl::StrCat(operation, ":",
                      std::string(reinterpret_cast<const char*>(events.data()), events.size()));
}

// What a batch's results mean independently of timestamps: create statuses, the ids of found
// or selected objects, or the number of results.
std::vector<uint64_t> Meaning(uint8_t operation, std::span<const uint8_t> results) {
  const OperationInfo& info = *FindOperation(operation);
  std::vector<uint64_t> meaning;
  for (size_t offset = 0; offset + info.result_size <= results.size();
       offset += info.result_size) {
    const uint8_t* result = results.data() + offset;
    switch (static_cast<Operation>(operation)) {
      case Operation::kCreateAccounts:
      case Operation::kCreateTransfers: {
        CreateResult create;
        std::memcpy(&create, result, sizeof(create));
        meaning.push_back(create.status);
        break;
      }
      case Operation::kLookupAccounts:
      case Operation::kLookupTransfers:
      case Operation::kGetAccountTransfers:
      case Operation::kQueryAccounts:
      case Operation::kQueryTransfers: {
        uint64_t id_low;  // Accounts and transfers start with their u128 id.
        std::memcpy(&id_low, result, sizeof(id_low));
        meaning.push_back(id_low);
        break;
      }
      default:
        meaning.push_back(0);
    }
  }
  return meaning;
}

class WorkloadTest : public ::testing::Test {};

TEST_F(WorkloadTest, EveryCallerGetsExactlyItsOwnResultsEqualToAReplayInCommitOrder) {
  const uint64_t seed = TestSeed(20261122);
  SCOPED_TRACE(absl::StrCat("seed ", seed, " (set TBPROXY_TEST_SEED to choose one)"));

  Harness harness({.sessions = 4});
  ASSERT_TRUE(harness.WaitRegistered(4));
  Answers setup(1);
  setup.Submit(harness.coalescer(), 0, BaseAccounts());
  ASSERT_TRUE(setup.WaitAnswered(1));
  ASSERT_TRUE(setup.Get(0).result->ok()) << setup.Get(0).result->status();

  std::vector<WorkloadCall> calls;
  for (uint32_t caller = 0; caller < kCallers; caller++) calls.push_back(MakeCall(seed, caller));
  Answers answers(kCallers);
  std::vector<std::thread> threads;
  for (uint32_t thread = 0; thread < kThreads; thread++) {
    threads.emplace_back([&, thread] {
      for (uint32_t caller = thread; caller < kCallers; caller += kThreads) {
        answers.Submit(harness.coalescer(), caller, calls[caller].request);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  ASSERT_TRUE(answers.WaitAnswered(kCallers)) << answers.answered() << " answered";
  EXPECT_EQ(harness.pool_events().evicted.load(), 0u);
  EXPECT_EQ(harness.server().stats().evictions, 0u);
  harness.Shutdown();  // Nothing can answer after this: counts are final.

  // Every caller: exactly one answer; invalid calls refused at once, alone.
  absl::flat_hash_map<std::string, uint32_t> caller_of;
  uint32_t valid = 0;
  for (uint32_t caller = 0; caller < kCallers; caller++) {
    const Answers::Slot slot = answers.Get(caller);
    ASSERT_EQ(slot.count, 1) << "caller " << caller;
    if (!calls[caller].valid) {
      EXPECT_EQ(slot.result->status().code(), absl::StatusCode::kInvalidArgument)
          << "caller " << caller << ": " << slot.result->status();
      EXPECT_TRUE(slot.inline_answer) << "caller " << caller;
      continue;
    }
    ASSERT_TRUE(slot.result->ok()) << "caller " << caller << ": " << slot.result->status();
    valid++;
    const proxy::SubmitRequest& request = calls[caller].request;
    ASSERT_TRUE(caller_of.emplace(Key(request.operation, request.events), caller).second)
        << "workload bytes must be unique, caller " << caller;
  }
  EXPECT_EQ(harness.coalescer_events().refused_invalid.load(), kCallers - valid);

  // Replay the cluster's messages in commit order, each at the cluster's own clock.
  std::vector<SpiedMessage> messages = harness.spy().messages();
  for (const SpiedMessage& message : messages) {
    ASSERT_TRUE(message.reply.has_value() && message.reply->ok());
  }
  std::sort(messages.begin(), messages.end(), [](const SpiedMessage& a, const SpiedMessage& b) {
    return (*a.reply)->op < (*b.reply)->op;
  });
  devcluster::StateMachine replay({});
  devcluster::StateMachine one_by_one({});
  std::vector<uint32_t> seen(kCallers, 0);
  uint32_t coalesced_messages = 0;
  std::map<uint32_t, uint32_t> create_statuses;
  for (const SpiedMessage& message : messages) {
    const pool::ClusterReply& reply = **message.reply;
    const OperationInfo& info = *FindOperation(message.operation);
    const std::vector<std::span<const uint8_t>> batches =
        Batches(message.operation, message.body, /*reply=*/false);
    uint64_t events = 0;
    for (std::span<const uint8_t> batch : batches) events += batch.size() / info.event_size;
    const uint64_t created_events = IsCreateOperation(message.operation) ? events : 0;
    const devcluster::ExecuteResult expected =
        replay.Execute(message.operation, message.body, reply.timestamp - created_events);
    ASSERT_EQ(expected.timestamp, reply.timestamp) << "op " << reply.op;
    ASSERT_EQ(expected.body, reply.body) << "op " << reply.op << " operation " << info.name;

    const std::vector<std::span<const uint8_t>> results =
        Batches(message.operation, reply.body, /*reply=*/true);
    ASSERT_EQ(results.size(), batches.size());
    if (batches.size() > 1) coalesced_messages++;
    for (size_t i = 0; i < batches.size(); i++) {
      auto found = caller_of.find(Key(message.operation, batches[i]));
      if (found == caller_of.end()) continue;  // The setup call.
      const uint32_t caller = found->second;
      seen[caller]++;
      const Answers::Slot slot = answers.Get(caller);
      const proxy::SubmitResult& answer = **slot.result;
      EXPECT_EQ(answer.timestamp, reply.timestamp) << "caller " << caller;
      EXPECT_EQ(answer.results, std::vector<uint8_t>(results[i].begin(), results[i].end()))
          << "caller " << caller << " got results that are not its own";
      for (uint64_t status : Meaning(message.operation, answer.results)) {
        if (IsCreateOperation(message.operation)) create_statuses[status]++;
      }
      // The same batch alone, in the same order, means the same.
      std::vector<uint8_t> alone_body(batches[i].begin(), batches[i].end());
      if (info.multi_batch) {
        const std::vector<std::span<const uint8_t>> one = {batches[i]};
        alone_body = EncodeMultiBatch(info.event_size, one);
      }
      // At the message's clock, so filters' tiny timestamp_min tags select the same objects.
      const devcluster::ExecuteResult alone = one_by_one.Execute(
          message.operation, alone_body, reply.timestamp - created_events);
      const std::vector<std::span<const uint8_t>> alone_results =
          Batches(message.operation, alone.body, /*reply=*/true);
      ASSERT_EQ(alone_results.size(), 1u);
      EXPECT_EQ(Meaning(message.operation, alone_results[0]),
                Meaning(message.operation, answer.results))
          << "caller " << caller << " (" << info.name << ") differs from its batch applied alone";
    }
    if (batches.size() > 0 && caller_of.find(Key(message.operation, batches[0])) ==
                                  caller_of.end()) {
      // The setup message: apply it to the one-by-one machine too.
      (void)one_by_one.Execute(message.operation, message.body, reply.timestamp - created_events);
    }
  }
  for (uint32_t caller = 0; caller < kCallers; caller++) {
    EXPECT_EQ(seen[caller], calls[caller].valid ? 1u : 0u)
        << "caller " << caller << " was carried " << seen[caller] << " times";
  }
  // The workload exercised what it claims to (deterministic in the seed, not in timing).
  EXPECT_GT(create_statuses[static_cast<uint32_t>(CreateAccountStatus::kCreated)], 0u);
  EXPECT_GT(create_statuses[static_cast<uint32_t>(CreateAccountStatus::kLinkedEventFailed)], 0u);
  EXPECT_GT(create_statuses[static_cast<uint32_t>(CreateAccountStatus::kLinkedEventChainOpen)],
            0u);
  std::printf("workload seed %llu: %zu messages, %u carried several callers, %u valid callers\n",
              static_cast<unsigned long long>(seed), messages.size(), coalesced_messages, valid);
}

}  // namespace
}  // namespace tb::integration
