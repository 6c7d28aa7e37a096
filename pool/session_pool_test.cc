#include "pool/session_pool.h"

#include <functional>
#include <memory>
#include <set>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "client_core/header.h"
#include "client_core/multi_batch.h"
#include "client_core/outcome.h"
#include "client_core/release.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "pool/constants.h"
#include "pool/testing/test_cluster.h"
#include "pool/testing/recording.h"
#include "pool/testing/relay.h"

namespace tb::pool {
namespace {

using ::testing::HasSubstr;
using testing::IoThread;
using testing::Record;
using testing::RecordingObserver;
using testing::Relay;
using testing::TestCluster;
using testing::TestClusterOptions;
using testing::TestSource;

constexpr uint8_t kLookupAccounts = 140;
constexpr uint32_t kAccountSize = 128;

// lookup_accounts of one id: one batch holding one 16-byte id.
std::vector<uint8_t> LookupBody(uint64_t id) {
  uint8_t bytes[16] = {};
  std::memcpy(bytes, &id, sizeof(id));
  const std::span<const uint8_t> batch(bytes, sizeof(bytes));
  return EncodeMultiBatch(16, std::span<const std::span<const uint8_t>>(&batch, 1));
}

class SessionPoolTest : public ::testing::Test {
 protected:
  void TearDown() override { StopAll(); }

  // Stops the I/O thread, then destroys the pools (allowed once the io_context no longer runs).
  void StopAll() {
    io_.Stop();
    pools_.clear();
  }

  SessionPoolOptions Options(const TestCluster& cluster, uint32_t sessions) {
    return SessionPoolOptions{
        .cluster = cluster.cluster(),
        .replica_addresses = cluster.addresses(),
        .sessions = sessions,
        .session_budget = sessions,
        .keep_warm_interval = absl::Minutes(10),
        .replacement_backoff_min = absl::Milliseconds(10),
        .replacement_backoff_max = absl::Milliseconds(100),
    };
  }

  SessionPool* StartPool(SessionPoolOptions options, Record* record, TestSource* source,
                         RecordingObserver* observer) {
    absl::StatusOr<std::unique_ptr<SessionPool>> pool =
        SessionPool::Create(io_.io_context(), std::move(options), source, observer);
    EXPECT_TRUE(pool.ok()) << pool.status();
    if (!pool.ok()) return nullptr;
    SessionPool* raw = pool->get();
    raw->SetBatchSizeLimitCallback([record](uint32_t limit) {
      auto lock = record->Lock();
      record->batch_size_limits.push_back(limit);
    });
    raw->Start();
    pools_.push_back(std::move(*pool));
    return raw;
  }

  SessionPool* StartPool(SessionPoolOptions options) {
    return StartPool(std::move(options), &record_, &source_, &observer_);
  }

  // Pushes messages numbered [first, first + count), wakes the pool, waits for all their results.
  bool SendAndWait(SessionPool* pool, uint32_t first, uint32_t count) {
    for (uint32_t number = first; number < first + count; number++) {
      source_.Push(number, kLookupAccounts, LookupBody(number + 1));
    }
    pool->Wake();
    return record_.WaitUntil([first, count](Record& record) {
      for (uint32_t number = first; number < first + count; number++) {
        if (!record.results.contains(number)) return false;
      }
      return true;
    });
  }

  // `threads` producers push `per_thread` messages each, each followed by Wake(); with
  // `wait_every` > 0 a producer waits for every wait_every-th message's answer before going on.
  // Then every message must be answered once, without error. Messages are numbered
  // first + thread * per_thread + i, so that several rounds can share one Record.
  void ProduceFromThreadsAndCheckAnswers(SessionPool* pool, uint32_t threads, uint32_t per_thread,
                                         uint32_t wait_every, uint32_t first = 0) {
    std::vector<std::thread> producers;
    for (uint32_t thread = 0; thread < threads; thread++) {
      producers.emplace_back([this, pool, thread, per_thread, wait_every, first] {
        for (uint32_t i = 0; i < per_thread; i++) {
          const uint32_t number = first + thread * per_thread + i;
          source_.Push(number, kLookupAccounts, LookupBody(number + 1));
          pool->Wake();
          if (wait_every > 0 && i % wait_every == 0) {
            ASSERT_TRUE(
                record_.WaitUntil([number](Record& r) { return r.results.contains(number); }))
                << "message " << number << " was never sent";
          }
        }
      });
    }
    for (std::thread& producer : producers) producer.join();
    const size_t total = first + size_t{threads} * per_thread;
    ASSERT_TRUE(record_.WaitUntil([total](Record& r) { return r.results.size() == total; }));
    auto lock = record_.Lock();
    for (const auto& [number, result] : record_.results) EXPECT_TRUE(result.ok()) << number;
    EXPECT_EQ(record_.duplicate_results, 0u);
  }

  // With two sessions on `relay` (one connection each): silences the first connection, gives
  // both sessions a message (numbers 0 and 1), so the first one's stays unanswered while the
  // other session answers, then sends one message at a time (2, 3, ...) until `until` holds.
  // Returns the next unused number; 0 (after reporting a failure) if `until` never held.
  uint32_t StickOneSessionUntil(SessionPool* pool, Relay& relay,
                                const std::function<bool(Record&)>& until) {
    if (relay.connection_count() != 2 || !relay.Silence(0)) {
      ADD_FAILURE() << "expected two relayed connections to silence one";
      return 0;
    }
    source_.Push(0, kLookupAccounts, LookupBody(1));
    source_.Push(1, kLookupAccounts, LookupBody(2));
    pool->Wake();
    for (uint32_t number = 2; number < 100'000; number++) {
      {
        auto lock = record_.Lock();
        if (until(record_)) return number;
      }
      if (!SendAndWait(pool, number, 1)) {
        ADD_FAILURE() << "message " << number << " was not answered";
        return 0;
      }
    }
    ADD_FAILURE() << "the stuck session was never noticed";
    return 0;
  }

  // Registers one other client (a one-session pool on its own observer) and closes it, as an
  // application of the same cluster would: its session keeps a slot in the cluster's table.
  u128 RegisterOtherClient(const TestCluster& cluster) {
    auto record = std::make_unique<Record>();
    auto source = std::make_unique<TestSource>(record.get());
    auto observer = std::make_unique<RecordingObserver>(record.get());
    SessionPool* other = StartPool(Options(cluster, 1), record.get(), source.get(), observer.get());
    EXPECT_TRUE(record->WaitUntil([](Record& r) { return !r.registered.empty(); }));
    u128 client = 0;
    {
      auto lock = record->Lock();
      if (!record->registered.empty()) client = record->registered.front();
    }
    Record* other_record = record.get();
    other->Drain(absl::Seconds(1), [other_record] { other_record->Lock()->drained = true; });
    EXPECT_TRUE(record->WaitUntil([](Record& r) { return r.drained; }));
    others_.push_back({std::move(record), std::move(source), std::move(observer)});
    return client;
  }

  Record record_;
  TestSource source_{&record_};
  RecordingObserver observer_{&record_};
  IoThread io_;
  std::vector<std::unique_ptr<SessionPool>> pools_;
  struct Other {
    std::unique_ptr<Record> record;
    std::unique_ptr<TestSource> source;
    std::unique_ptr<RecordingObserver> observer;
  };
  std::vector<Other> others_;
};

TEST_F(SessionPoolTest, CreateRefusesInvalidOptionsNamingTheField) {
  TestCluster cluster({});
  SessionPoolOptions options = Options(cluster, 4);
  options.session_budget = 3;
  absl::StatusOr<std::unique_ptr<SessionPool>> pool =
      SessionPool::Create(io_.io_context(), options, &source_, &observer_);
  ASSERT_FALSE(pool.ok());
  EXPECT_EQ(pool.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(pool.status().message()), HasSubstr("session_budget"));
}

TEST_F(SessionPoolTest, RegistersEverySessionWithItsOwnClientIdAndBecomesReady) {
  TestCluster cluster({.batch_size_limit = 32512});
  absl::StatusOr<std::unique_ptr<SessionPool>> created =
      SessionPool::Create(io_.io_context(), Options(cluster, 3), &source_, &observer_);
  ASSERT_TRUE(created.ok()) << created.status();
  SessionPool* pool = created->get();
  pools_.push_back(std::move(*created));
  pool->SetBatchSizeLimitCallback([this](uint32_t limit) {
    auto lock = record_.Lock();
    record_.batch_size_limits.push_back(limit);
  });
  EXPECT_FALSE(pool->ready());
  EXPECT_EQ(pool->registered_session_count(), 0u);
  pool->Start();
  ASSERT_TRUE(record_.WaitUntil([](Record& r) { return r.registered.size() == 3; }));
  EXPECT_TRUE(pool->ready());
  EXPECT_EQ(pool->registered_session_count(), 3u);
  EXPECT_TRUE(pool->status().ok());
  ASSERT_TRUE(SendAndWait(pool, 0, 1));
  auto lock = record_.Lock();
  // Sessions ask the source for messages that fit the limit their register reply announced.
  EXPECT_EQ(record_.limit_seen, 32512u);
  EXPECT_EQ(std::set<u128>(record_.registered.begin(), record_.registered.end()).size(), 3u);
  // The coalescer learns the cluster's limit once, when the first session registers.
  EXPECT_EQ(record_.batch_size_limits, std::vector<uint32_t>{32512});
}

TEST_F(SessionPoolTest, AnswersEveryMessageWithOneRequestInFlightPerSession) {
  TestCluster cluster({});
  SessionPool* pool = StartPool(Options(cluster, 2));
  ASSERT_TRUE(record_.WaitUntil([](Record& r) { return r.registered.size() == 2; }));
  ASSERT_TRUE(SendAndWait(pool, 0, 200));
  auto lock = record_.Lock();
  EXPECT_EQ(record_.duplicate_results, 0u);
  EXPECT_LE(record_.in_flight_max, 2u);
  EXPECT_GE(record_.in_flight_max, 1u);
  EXPECT_EQ(record_.round_trips, 200u);
  for (const auto& [number, result] : record_.results) {
    ASSERT_TRUE(result.ok()) << number << ": " << result.status();
    EXPECT_GT(result->op, 0u);
    EXPECT_GT(result->timestamp, 0u);
    absl::StatusOr<MultiBatchView> batches = DecodeMultiBatch(result->body, kAccountSize);
    ASSERT_TRUE(batches.ok()) << batches.status();
    EXPECT_EQ(batches->size(), 1u);
  }
}

TEST_F(SessionPoolTest, WakesFromManyThreadsLoseNoMessage) {
  TestCluster cluster({});
  SessionPool* pool = StartPool(Options(cluster, 4));
  ASSERT_TRUE(record_.WaitUntil([](Record& r) { return r.registered.size() == 4; }));
  ProduceFromThreadsAndCheckAnswers(pool, /*threads=*/4, /*per_thread=*/250, /*wait_every=*/0);
  auto lock = record_.Lock();
  EXPECT_LE(record_.in_flight_max, 4u);
}

// A Wake() while every session is busy does nothing (each session pulls when its reply comes);
// work queued just as the one session finds the source empty must still wake it.
TEST_F(SessionPoolTest, WakesWhileTheOnlySessionIsBusyOrJustIdleLoseNoMessage) {
  TestCluster cluster({});
  SessionPool* pool = StartPool(Options(cluster, 1));
  ASSERT_TRUE(record_.WaitUntil([](Record& r) { return r.registered.size() == 1; }));
  // One producer waiting for each answer: the session is idle with nothing queued at every push.
  ProduceFromThreadsAndCheckAnswers(pool, /*threads=*/1, /*per_thread=*/20, /*wait_every=*/1);
  // Two producers, waiting now and then: pushes land while the session is busy and just idle.
  ProduceFromThreadsAndCheckAnswers(pool, /*threads=*/2, /*per_thread=*/1000, /*wait_every=*/7,
                                    /*first=*/20);
  auto lock = record_.Lock();
  EXPECT_EQ(record_.in_flight_max, 1u);
}

TEST_F(SessionPoolTest, MessagesQueuedBeforeRegistrationAreSentOnceASessionRegisters) {
  TestCluster cluster({});
  for (uint32_t number = 0; number < 5; number++) {
    source_.Push(number, kLookupAccounts, LookupBody(number + 1));
  }
  StartPool(Options(cluster, 1));
  ASSERT_TRUE(record_.WaitUntil([](Record& r) { return r.results.size() == 5; }));
  auto lock = record_.Lock();
  for (const auto& [number, result] : record_.results) EXPECT_TRUE(result.ok()) << number;
}

TEST_F(SessionPoolTest, RefusedMessageFailsAloneAsNotApplied) {
  TestCluster cluster({});
  SessionPool* pool = StartPool(Options(cluster, 1));
  ASSERT_TRUE(record_.WaitUntil([](Record& r) { return r.registered.size() == 1; }));
  // Operation 128 would crash a real replica: the session refuses it before the wire.
  source_.Push(0, 128, {});
  source_.Push(1, kLookupAccounts, LookupBody(1));
  pool->Wake();
  ASSERT_TRUE(record_.WaitUntil([](Record& r) { return r.results.size() == 2; }));
  auto lock = record_.Lock();
  const absl::StatusOr<ClusterReply>& refused = record_.results.at(0);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(GetOutcome(refused.status()), Outcome::kNotApplied);
  // The message itself is bad: another session would refuse it too.
  EXPECT_TRUE(record_.resubmissions.empty());
  EXPECT_TRUE(record_.results.at(1).ok());
}

TEST_F(SessionPoolTest, EvictedSessionsAreReplacedByNewClientIdsAndLoseNoMessage) {
  TestCluster cluster({.clients_max = 2});
  SessionPool* pool = StartPool(Options(cluster, 2));
  ASSERT_TRUE(record_.WaitUntil([](Record& r) { return r.registered.size() == 2; }));
  std::set<u128> first_clients;
  {
    auto lock = record_.Lock();
    first_clients.insert(record_.registered.begin(), record_.registered.end());
  }
  // Two other clients register: the table holds two sessions, so both of the pool's go.
  RegisterOtherClient(cluster);
  RegisterOtherClient(cluster);

  // Each evicted session learns it from the answer to its next message, which the cluster did
  // not execute (no_session): the pool sends that message again on another session. Keep sending
  // one message at a time until both sessions were replaced and registered again.
  uint32_t number = 0;
  while (true) {
    ASSERT_TRUE(SendAndWait(pool, number, 1)) << "message " << number;
    number++;
    auto lock = record_.Lock();
    if (record_.replaced.size() == 2 && record_.registered.size() == 4) break;
    ASSERT_LT(number, 200u) << "the pool did not replace its evicted sessions";
  }
  ASSERT_TRUE(SendAndWait(pool, number, 20));

  auto lock = record_.Lock();
  for (const auto& [n, result] : record_.results) {
    EXPECT_TRUE(result.ok()) << n << ": " << result.status();
  }
  EXPECT_EQ(record_.duplicate_results, 0u);
  ASSERT_EQ(record_.evicted.size(), 2u);
  for (const auto& [client, reason] : record_.evicted) {
    EXPECT_TRUE(first_clients.contains(client));
    EXPECT_EQ(reason, EvictionReason::kNoSession);
  }
  ASSERT_EQ(record_.resubmissions.size(), 2u);
  for (const auto& [reason, attempts] : record_.resubmissions) {
    EXPECT_EQ(reason, ResubmissionReason::kNoSession);
    EXPECT_LT(attempts, kMessageAttemptsMax);
  }
  for (const auto& [old_client, new_client] : record_.replaced) {
    EXPECT_TRUE(first_clients.contains(old_client));
    EXPECT_FALSE(first_clients.contains(new_client));
  }
  EXPECT_EQ(pool->registered_session_count(), 2u);
}

TEST_F(SessionPoolTest, ChurnedMessageTravelsAgainOnAReplacementSessionAndSucceeds) {
  // Two slots in the cluster's table: two other clients' registrations push both of the pool's
  // sessions out, so the message fails on each (no_session, not applied) and then succeeds on
  // the first replacement, within the attempts bound.
  static_assert(kMessageAttemptsMax >= 3);
  TestCluster cluster({.clients_max = 2});
  SessionPool* pool = StartPool(Options(cluster, 2));
  ASSERT_TRUE(record_.WaitUntil([](Record& r) { return r.registered.size() == 2; }));
  RegisterOtherClient(cluster);
  RegisterOtherClient(cluster);
  ASSERT_TRUE(SendAndWait(pool, 0, 1));
  auto lock = record_.Lock();
  const absl::StatusOr<ClusterReply>& result = record_.results.at(0);
  EXPECT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(record_.evicted.size(), 2u);
  EXPECT_EQ(record_.resubmissions.size(), 2u);
  EXPECT_EQ(record_.round_trips, 1u);
}

TEST_F(SessionPoolTest, ChurnedMessageFailsAsNotAppliedOnceTheAttemptsBoundIsReached) {
  // More sessions than the bound, all pushed out of the one-slot table, and replacements slower
  // than the test: every session the message tries evicts it.
  TestCluster cluster({.clients_max = 1});
  SessionPoolOptions options = Options(cluster, kMessageAttemptsMax + 1);
  options.replacement_backoff_min = absl::Seconds(20);
  options.replacement_backoff_max = absl::Seconds(20);
  SessionPool* pool = StartPool(options);
  ASSERT_TRUE(record_.WaitUntil(
      [](Record& r) { return r.registered.size() == kMessageAttemptsMax + 1; }));
  RegisterOtherClient(cluster);
  ASSERT_TRUE(SendAndWait(pool, 0, 1));
  // A session reports its eviction after it has failed its message.
  ASSERT_TRUE(record_.WaitUntil([](Record& r) { return r.evicted.size() == kMessageAttemptsMax; }));
  auto lock = record_.Lock();
  const absl::StatusOr<ClusterReply>& result = record_.results.at(0);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kAborted) << result.status();
  EXPECT_THAT(std::string(result.status().message()), HasSubstr("no_session"));
  EXPECT_EQ(GetOutcome(result.status()), Outcome::kNotApplied);
  EXPECT_EQ(record_.evicted.size(), kMessageAttemptsMax);
  EXPECT_EQ(record_.resubmissions.size(), kMessageAttemptsMax - 1);
  EXPECT_EQ(record_.duplicate_results, 0u);
}

TEST_F(SessionPoolTest, ChurnedMessagePastItsDeadlineFailsAsNotAppliedWithoutResubmission) {
  TestCluster cluster({.clients_max = 1});
  SessionPool* pool = StartPool(Options(cluster, 2));
  ASSERT_TRUE(record_.WaitUntil([](Record& r) { return r.registered.size() == 2; }));
  RegisterOtherClient(cluster);
  // The pool sends what the source gives it (expiry before sending is the coalescer's job), but
  // does not send it again once its callers' deadline has passed.
  source_.Push(0, kLookupAccounts, LookupBody(1), absl::Now() - absl::Milliseconds(1));
  pool->Wake();
  ASSERT_TRUE(record_.WaitUntil([](Record& r) { return r.results.size() == 1; }));
  auto lock = record_.Lock();
  const absl::StatusOr<ClusterReply>& result = record_.results.at(0);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kAborted) << result.status();
  EXPECT_EQ(GetOutcome(result.status()), Outcome::kNotApplied);
  EXPECT_TRUE(record_.resubmissions.empty());
}

TEST_F(SessionPoolTest, KeepWarmKeepsSessionsInTheTableWhileOtherClientsChurn) {
  // Room for the pool's two sessions and one other client: every further registration evicts
  // the least recently committed session, which must never be one of the pool's.
  TestCluster cluster({.clients_max = 3});
  SessionPoolOptions options = Options(cluster, 2);
  options.keep_warm_interval = absl::Milliseconds(30);
  SessionPool* pool = StartPool(options);
  ASSERT_TRUE(record_.WaitUntil([](Record& r) { return r.registered.size() == 2; }));
  std::vector<u128> clients;
  {
    auto lock = record_.Lock();
    clients = record_.registered;
  }
  for (int round = 0; round < 6; round++) {
    RegisterOtherClient(cluster);
    // Both pool sessions commit a keep-warm after that registration, so they are younger than
    // every other client when the next one registers. Two: the first one seen may have committed
    // just before the registration and only been reported after it.
    std::map<u128, uint32_t> before;
    {
      auto lock = record_.Lock();
      before = record_.keep_warm;
    }
    ASSERT_TRUE(record_.WaitUntil([&](Record& r) {
      for (u128 client : clients) {
        if (r.keep_warm[client] < before[client] + 2) return false;
      }
      return true;
    })) << "round " << round;
  }
  // The sessions still work without a single failure.
  ASSERT_TRUE(SendAndWait(pool, 0, 10));
  auto lock = record_.Lock();
  EXPECT_TRUE(record_.evicted.empty());
  EXPECT_TRUE(record_.replaced.empty());
  for (const auto& [number, result] : record_.results) EXPECT_TRUE(result.ok()) << number;
  EXPECT_EQ(pool->registered_session_count(), 2u);
}

TEST_F(SessionPoolTest, WithoutKeepWarmChurnEvictsTheIdleSessions) {
  // The control for the test above: the same churn with keep-warm off costs the pool its
  // sessions, which it then replaces.
  TestCluster cluster({.clients_max = 3});
  SessionPool* pool = StartPool(Options(cluster, 2));
  ASSERT_TRUE(record_.WaitUntil([](Record& r) { return r.registered.size() == 2; }));
  for (int round = 0; round < 3; round++) RegisterOtherClient(cluster);
  ASSERT_TRUE(SendAndWait(pool, 0, 1));
  auto lock = record_.Lock();
  // The caller does not see it: the message travels again on another session.
  EXPECT_TRUE(record_.results.at(0).ok()) << record_.results.at(0).status();
  EXPECT_FALSE(record_.evicted.empty());
  EXPECT_FALSE(record_.resubmissions.empty());
}

TEST_F(SessionPoolTest, PrimaryChangeUnderLoadLosesNoMessage) {
  TestCluster cluster({.replica_count = 3});
  SessionPool* pool = StartPool(Options(cluster, 3));
  ASSERT_TRUE(record_.WaitUntil([](Record& r) { return r.registered.size() == 3; }));
  constexpr uint32_t kMessages = 300;
  for (uint32_t number = 0; number < kMessages; number++) {
    source_.Push(number, kLookupAccounts, LookupBody(number + 1));
  }
  pool->Wake();
  ASSERT_TRUE(record_.WaitUntil([](Record& r) { return r.results.size() >= 20; }));
  const uint32_t view_before = cluster.view();
  cluster.ChangePrimary();
  ASSERT_TRUE(record_.WaitUntil([](Record& r) { return r.results.size() == kMessages; }));
  auto lock = record_.Lock();
  for (const auto& [number, result] : record_.results) {
    EXPECT_TRUE(result.ok()) << number << ": " << result.status();
  }
  EXPECT_EQ(record_.duplicate_results, 0u);
  EXPECT_TRUE(record_.evicted.empty());
  ASSERT_FALSE(record_.views.empty());
  EXPECT_GT(*std::max_element(record_.views.begin(), record_.views.end()), view_before);
}

TEST_F(SessionPoolTest, LossyClusterStillAnswersEveryMessageWithoutErrors) {
  TestCluster cluster({});
  SessionPool* pool = StartPool(Options(cluster, 2));
  ASSERT_TRUE(record_.WaitUntil([](Record& r) { return r.registered.size() == 2; }));
  // Replies lost and connections cut: sessions resend the same bytes until answered, and the
  // cluster answers a resent request with its stored reply, so no caller sees the faults.
  cluster.server().SetFaults(
      {.reply_drop_probability = 0.1, .connection_reset_probability = 0.02, .seed = 7});
  // Send until the cluster has really lost some replies (the faults are random).
  uint32_t sent = 0;
  while (cluster.server().stats().replies_lost < 3) {
    ASSERT_LT(sent, 1000u) << "the fault injection lost no replies";
    ASSERT_TRUE(SendAndWait(pool, sent, 10));
    sent += 10;
  }
  auto lock = record_.Lock();
  EXPECT_EQ(record_.results.size(), sent);
  for (const auto& [number, result] : record_.results) {
    EXPECT_TRUE(result.ok()) << number << ": " << result.status();
  }
  EXPECT_EQ(record_.duplicate_results, 0u);
  EXPECT_GT(record_.resends, 0u);
  EXPECT_TRUE(record_.evicted.empty());
}

// Quick ticks so that the smallest stuck timeout (kSessionStuckTicksMin ticks) is short.
SessionPoolOptions StuckOptions(SessionPoolOptions options) {
  options.tick_interval = absl::Milliseconds(1);
  options.session_stuck_timeout = absl::Milliseconds(1) * static_cast<int64_t>(kSessionStuckTicksMin);
  return options;
}

TEST_F(SessionPoolTest, SessionStuckWhileTheClusterAnswersOthersIsRetiredAndReplaced) {
  TestCluster cluster({});
  Relay relay(cluster.addresses()[0].port);
  SessionPoolOptions options = StuckOptions(Options(cluster, 2));
  options.session_budget = 3;  // Room for the retired client id, which may still hold a slot.
  options.replica_addresses = {{"127.0.0.1", relay.port()}};
  SessionPool* pool = StartPool(options);
  ASSERT_TRUE(record_.WaitUntil([](Record& r) { return r.registered.size() == 2; }));
  std::vector<u128> first_clients;
  {
    auto lock = record_.Lock();
    first_clients = record_.registered;
  }
  // One replica: one connection per session. Nothing comes back on the first any more.
  const uint32_t number =
      StickOneSessionUntil(pool, relay, [](Record& r) { return !r.retired.empty(); });
  ASSERT_NE(number, 0u);
  // A new session, with a new client id, takes the retired one's place.
  ASSERT_TRUE(record_.WaitUntil([](Record& r) { return r.registered.size() == 3; }));
  ASSERT_TRUE(SendAndWait(pool, number, 20));
  auto lock = record_.Lock();
  ASSERT_EQ(record_.retired.size(), 1u);
  const u128 retired = record_.retired[0];
  EXPECT_NE(std::find(first_clients.begin(), first_clients.end(), retired), first_clients.end());
  ASSERT_EQ(record_.replaced.size(), 1u);
  EXPECT_EQ(record_.replaced[0].first, retired);
  EXPECT_EQ(std::find(first_clients.begin(), first_clients.end(), record_.replaced[0].second),
            first_clients.end());
  // Exactly one message failed: the stuck one, which the cluster may have applied.
  uint32_t failed = 0;
  for (const auto& [n, result] : record_.results) {
    if (result.ok()) continue;
    failed++;
    EXPECT_LE(n, 1u);
    EXPECT_EQ(result.status().code(), absl::StatusCode::kUnavailable) << result.status();
    EXPECT_THAT(std::string(result.status().message()), HasSubstr("session retired"));
    EXPECT_EQ(GetOutcome(result.status()), Outcome::kUnknown);
  }
  EXPECT_EQ(failed, 1u);
  EXPECT_EQ(record_.duplicate_results, 0u);
  EXPECT_TRUE(record_.evicted.empty());
  EXPECT_EQ(pool->registered_session_count(), 2u);
}

// With session_budget == sessions there is no room for a retired client id: the stuck session
// is kept, and that is reported once, not on every tick.
TEST_F(SessionPoolTest, StuckSessionWithNoRoomToRetireIsKeptAndReportedOnce) {
  TestCluster cluster({});
  Relay relay(cluster.addresses()[0].port);
  SessionPoolOptions options = StuckOptions(Options(cluster, 2));
  options.session_budget = 2;
  options.replica_addresses = {{"127.0.0.1", relay.port()}};
  SessionPool* pool = StartPool(options);
  ASSERT_TRUE(record_.WaitUntil([](Record& r) { return r.registered.size() == 2; }));
  uint32_t number =
      StickOneSessionUntil(pool, relay, [](Record& r) { return !r.stuck_kept.empty(); });
  ASSERT_NE(number, 0u);
  // Another stuck timeout's worth of ticks with the other session answering: still one report.
  const absl::Time until = absl::Now() + options.session_stuck_timeout;
  while (absl::Now() < until) {
    ASSERT_TRUE(SendAndWait(pool, number, 1)) << "message " << number;
    number++;
  }
  auto lock = record_.Lock();
  EXPECT_EQ(record_.stuck_kept.size(), 1u);
  EXPECT_TRUE(record_.retired.empty());
  EXPECT_TRUE(record_.replaced.empty());
  EXPECT_EQ(record_.registered.size(), 2u);
  // The stuck session keeps its message; every other one was answered.
  EXPECT_EQ(record_.results.size(), number - 1);
  for (const auto& [n, result] : record_.results) EXPECT_TRUE(result.ok()) << n;
}

TEST_F(SessionPoolTest, SilentClusterIsAnOutageNotAStuckSession) {
  TestCluster cluster({});
  SessionPoolOptions options = StuckOptions(Options(cluster, 2));
  options.session_budget = 4;
  SessionPool* pool = StartPool(options);
  ASSERT_TRUE(record_.WaitUntil([](Record& r) { return r.registered.size() == 2; }));
  cluster.server().Pause();
  source_.Push(0, kLookupAccounts, LookupBody(1));
  source_.Push(1, kLookupAccounts, LookupBody(2));
  pool->Wake();
  ASSERT_TRUE(record_.WaitUntil([](Record& r) { return r.in_flight == 2; }));
  // Longer than a stuck timeout of silence; resends wake the wait as time passes.
  const absl::Time until = absl::Now() + options.session_stuck_timeout * 1.5;
  ASSERT_TRUE(record_.WaitUntil([until](Record&) { return absl::Now() >= until; }));
  {
    auto lock = record_.Lock();
    EXPECT_TRUE(record_.retired.empty());
    EXPECT_TRUE(record_.results.empty());
  }
  cluster.server().Resume();
  ASSERT_TRUE(record_.WaitUntil([](Record& r) { return r.results.size() == 2; }));
  auto lock = record_.Lock();
  for (const auto& [n, result] : record_.results) EXPECT_TRUE(result.ok()) << n;
  EXPECT_TRUE(record_.retired.empty());
  EXPECT_TRUE(record_.replaced.empty());
}

TEST_F(SessionPoolTest, DrainBeforeStartCompletesAndFailsEveryQueuedMessage) {
  TestCluster cluster({});
  absl::StatusOr<std::unique_ptr<SessionPool>> created =
      SessionPool::Create(io_.io_context(), Options(cluster, 1), &source_, &observer_);
  ASSERT_TRUE(created.ok());
  SessionPool* pool = created->get();
  pools_.push_back(std::move(*created));
  // More than the pool fails in one turn of its event loop.
  constexpr uint32_t kMessages = 3000;
  for (uint32_t number = 0; number < kMessages; number++) {
    source_.Push(number, kLookupAccounts, LookupBody(number + 1));
  }
  pool->Drain(absl::Seconds(1), [this] {
    auto lock = record_.Lock();
    record_.drained = true;
  });
  ASSERT_TRUE(
      record_.WaitUntil([](Record& r) { return r.drained && r.results.size() == kMessages; }));
  EXPECT_FALSE(pool->ready());
  auto lock = record_.Lock();
  for (const auto& [number, result] : record_.results) {
    EXPECT_EQ(GetOutcome(result.status()), Outcome::kNotApplied) << number;
  }
}

TEST_F(SessionPoolTest, DrainWaitsForRepliesInFlightAndFailsQueuedMessages) {
  TestCluster cluster({});
  SessionPool* pool = StartPool(Options(cluster, 2));
  ASSERT_TRUE(record_.WaitUntil([](Record& r) { return r.registered.size() == 2; }));
  // A stalled cluster keeps the first two messages in flight while the drain starts.
  cluster.server().Pause();
  constexpr uint32_t kMessages = 50;
  for (uint32_t number = 0; number < kMessages; number++) {
    source_.Push(number, kLookupAccounts, LookupBody(number + 1));
  }
  pool->Wake();
  ASSERT_TRUE(record_.WaitUntil([](Record& r) { return r.in_flight == 2; }));
  pool->Drain(absl::Seconds(60), [this] {
    auto lock = record_.Lock();
    record_.drained = true;
  });
  // The queued messages fail at once; the two in flight wait for the cluster.
  ASSERT_TRUE(record_.WaitUntil([](Record& r) { return r.results.size() == kMessages - 2; }));
  // A resend shows the stalled cluster dropped a transmission; the drain keeps waiting.
  ASSERT_TRUE(record_.WaitUntil([](Record& r) { return r.resends > 0; }));
  {
    auto lock = record_.Lock();
    EXPECT_FALSE(record_.drained);
  }
  cluster.server().Resume();
  ASSERT_TRUE(record_.WaitUntil([](Record& r) { return r.drained; }));
  EXPECT_FALSE(pool->ready());
  EXPECT_EQ(pool->registered_session_count(), 0u);
  EXPECT_EQ(pool->status().code(), absl::StatusCode::kUnavailable);
  auto lock = record_.Lock();
  EXPECT_EQ(record_.results.size(), kMessages);
  EXPECT_EQ(record_.duplicate_results, 0u);
  EXPECT_TRUE(record_.failures.empty());  // A drain is not a failure.
  uint32_t answered = 0;
  for (const auto& [number, result] : record_.results) {
    if (result.ok()) {
      answered++;
      continue;
    }
    EXPECT_EQ(result.status().code(), absl::StatusCode::kUnavailable) << number;
    EXPECT_EQ(GetOutcome(result.status()), Outcome::kNotApplied) << number;
  }
  EXPECT_EQ(answered, 2u);
  EXPECT_EQ(record_.round_trips, 2u);
}

TEST_F(SessionPoolTest, DrainTimeoutFailsRepliesInFlightAsUnknown) {
  TestCluster cluster({});
  SessionPool* pool = StartPool(Options(cluster, 1));
  ASSERT_TRUE(record_.WaitUntil([](Record& r) { return r.registered.size() == 1; }));
  cluster.server().Pause();
  source_.Push(0, kLookupAccounts, LookupBody(1));
  pool->Wake();
  ASSERT_TRUE(record_.WaitUntil([](Record& r) { return r.in_flight == 1; }));
  pool->Drain(absl::Milliseconds(50), [this] {
    auto lock = record_.Lock();
    record_.drained = true;
  });
  ASSERT_TRUE(record_.WaitUntil([](Record& r) { return r.drained; }));
  auto lock = record_.Lock();
  ASSERT_EQ(record_.results.size(), 1u);
  const absl::StatusOr<ClusterReply>& result = record_.results.at(0);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnavailable);
  // It was sent: the cluster may still apply it.
  EXPECT_EQ(GetOutcome(result.status()), Outcome::kUnknown);
}

TEST_F(SessionPoolTest, WakeAfterDrainFailsNewMessagesAsNotApplied) {
  TestCluster cluster({});
  SessionPool* pool = StartPool(Options(cluster, 1));
  ASSERT_TRUE(record_.WaitUntil([](Record& r) { return r.registered.size() == 1; }));
  pool->Drain(absl::Seconds(5), [this] {
    auto lock = record_.Lock();
    record_.drained = true;
  });
  ASSERT_TRUE(record_.WaitUntil([](Record& r) { return r.drained; }));
  source_.Push(0, kLookupAccounts, LookupBody(1));
  pool->Wake();
  ASSERT_TRUE(record_.WaitUntil([](Record& r) { return r.results.size() == 1; }));
  auto lock = record_.Lock();
  const absl::StatusOr<ClusterReply>& result = record_.results.at(0);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(GetOutcome(result.status()), Outcome::kNotApplied);
}

TEST_F(SessionPoolTest, RefusedReleaseFailsThePoolWithoutRetrying) {
  // A cluster whose oldest accepted client release is above ours evicts every session with
  // client_release_too_low; a new session would fare no better.
  TestCluster cluster({.release_client_min = MakeRelease(0, 17, 5)});
  source_.Push(0, kLookupAccounts, LookupBody(1));
  SessionPool* pool = StartPool(Options(cluster, 2));
  ASSERT_TRUE(record_.WaitUntil([](Record& r) { return !r.failures.empty(); }));
  ASSERT_TRUE(record_.WaitUntil([](Record& r) { return r.results.size() == 1; }));
  EXPECT_FALSE(pool->ready());
  EXPECT_EQ(pool->status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(pool->status().message()), HasSubstr("client_release_too_low"));
  auto lock = record_.Lock();
  EXPECT_TRUE(record_.replaced.empty());
  EXPECT_TRUE(record_.registered.empty());
  ASSERT_FALSE(record_.results.at(0).ok());
  EXPECT_EQ(GetOutcome(record_.results.at(0).status()), Outcome::kNotApplied);
}

}  // namespace
}  // namespace tb::pool
