// End-to-end harness: Coalescer -> SessionPool -> devcluster::Server (with the full in-memory
// StateMachine) over real TCP on 127.0.0.1 ephemeral ports, each side on its own I/O thread.
//
//   Harness harness({.sessions = 4});
//   Answers answers;
//   harness.coalescer().Submit(request, {}, answers.Callback(0));
//   ASSERT_TRUE(answers.WaitAll(1));
//
// Between the coalescer and the pool sits a recording MessageSource (`Spy`): it keeps every
// message body the pool took and what the cluster answered, so tests can replay the exact
// traffic into a second StateMachine. Waits are bounded waits on conditions, never sleeps.
#pragma once

#include <asio.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client_core/clock.h"
#include "client_core/header.h"
#include "client_core/outcome.h"
#include "client_core/session.h"
#include "client_core/tcp_transport.h"
#include "devcluster/server.h"
#include "devcluster/state_machine.h"
#include "gtest/gtest.h"
#include "pool/message_source.h"
#include "pool/pool_observer.h"
#include "pool/session_pool.h"
#include "pool/testing/recording.h"
#include "proxy/coalescer/coalescer.h"

namespace tb::integration {

inline constexpr absl::Duration kWaitTimeout = absl::Seconds(60);
inline constexpr u128 kClusterId = 0x1d7e;

// Waits until `predicate` holds (checked every millisecond), at most kWaitTimeout. For state
// that has no notification of its own (coalescer counts, pool readiness).
template <typename Predicate>
bool PollUntil(Predicate predicate) {
  const absl::Time end = absl::Now() + kWaitTimeout;
  while (!predicate()) {
    if (absl::Now() > end) return false;
    absl::SleepFor(absl::Milliseconds(1));
  }
  return true;
}

// One slot per caller: how many times its callback ran, and the last answer.
class Answers {
 public:
  struct Slot {
    int count = 0;
    std::optional<absl::StatusOr<proxy::SubmitResult>> result;
    bool inline_answer = false;  // Answered before Submit returned.
  };

  explicit Answers(size_t callers) : state_(std::make_shared<State>()) {
    state_->slots.resize(callers);
  }

  // The callback for caller `index`. It keeps the state alive, so a late answer (at the
  // coalescer's destruction) writes into valid memory and is still counted.
  proxy::SubmitCallback Callback(size_t index) {
    return [state = state_, index](absl::StatusOr<proxy::SubmitResult> result) {
      std::lock_guard<std::mutex> lock(state->mutex);
      Slot& slot = state->slots.at(index);
      slot.count++;
      if (slot.count == 1) state->answered++;
      slot.result = std::move(result);
      if (state->submitting.contains(index)) slot.inline_answer = true;
      state->changed.notify_all();
    };
  }

  // Submits through `submitter`, recording whether the answer came inline.
  void Submit(proxy::Submitter& submitter, size_t index, proxy::SubmitRequest request,
              proxy::SubmitOptions options = {}) {
    {
      std::lock_guard<std::mutex> lock(state_->mutex);
      state_->submitting.insert(index);
    }
    submitter.Submit(std::move(request), options, Callback(index));
    std::lock_guard<std::mutex> lock(state_->mutex);
    state_->submitting.erase(index);
  }

  // Waits until `count` distinct callers have an answer.
  bool WaitAnswered(size_t count) {
    std::unique_lock<std::mutex> lock(state_->mutex);
    return state_->changed.wait_for(lock, absl::ToChronoNanoseconds(kWaitTimeout),
                                    [&] { return state_->answered >= count; });
  }
  bool WaitCallers(const std::vector<size_t>& indexes) {
    std::unique_lock<std::mutex> lock(state_->mutex);
    return state_->changed.wait_for(lock, absl::ToChronoNanoseconds(kWaitTimeout), [&] {
      for (size_t index : indexes) {
        if (state_->slots.at(index).count == 0) return false;
      }
      return true;
    });
  }

  Slot Get(size_t index) const {
    std::lock_guard<std::mutex> lock(state_->mutex);
    return state_->slots.at(index);
  }
  size_t answered() const {
    std::lock_guard<std::mutex> lock(state_->mutex);
    return state_->answered;
  }
  size_t size() const { return state_->slots.size(); }

 private:
  struct State {
    mutable std::mutex mutex;
    std::condition_variable changed;
    std::vector<Slot> slots;
    size_t answered = 0;
    std::set<size_t> submitting;
  };
  std::shared_ptr<State> state_;
};

// A message the pool took, and what became of it.
struct SpiedMessage {
  uint8_t operation = 0;
  std::vector<uint8_t> body;
  std::optional<absl::StatusOr<pool::ClusterReply>> reply;
};

// The MessageSource the pool pulls from: forwards to the coalescer and records the traffic.
class Spy final : public pool::MessageSource {
 public:
  explicit Spy(pool::MessageSource* inner) : inner_(inner) {}

  std::optional<pool::OutgoingMessage> TakeMessage(uint32_t batch_size_limit) override {
    std::optional<pool::OutgoingMessage> message = inner_->TakeMessage(batch_size_limit);
    if (!message.has_value()) return message;
    size_t index = 0;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      index = messages_.size();
      messages_.push_back({.operation = message->operation, .body = message->body});
      changed_.notify_all();
    }
    message->on_done = [this, index, inner = std::move(message->on_done)](
                           absl::StatusOr<pool::ClusterReply> reply) mutable {
      {
        std::lock_guard<std::mutex> lock(mutex_);
        messages_.at(index).reply = reply;
        changed_.notify_all();
      }
      std::move(inner)(std::move(reply));
    };
    return message;
  }

  std::vector<SpiedMessage> messages() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return messages_;
  }
  // Waits until at least `count` messages were taken.
  bool WaitTaken(size_t count) {
    std::unique_lock<std::mutex> lock(mutex_);
    return changed_.wait_for(lock, absl::ToChronoNanoseconds(kWaitTimeout),
                             [&] { return messages_.size() >= count; });
  }

 private:
  pool::MessageSource* const inner_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<SpiedMessage> messages_;
};

// Counts what the pool reports.
class PoolEvents final : public pool::PoolObserver {
 public:
  void OnSessionRegistered(u128, uint64_t, uint32_t) override { registered++; }
  void OnSessionEvicted(u128, EvictionReason reason) override {
    evicted++;
    if (reason == EvictionReason::kInvalidRequestBody ||
        reason == EvictionReason::kInvalidRequestBodySize) {
      evicted_invalid++;
    }
  }
  void OnSessionReplaced(u128, u128) override { replaced++; }
  void OnViewChange(u128, uint32_t) override { view_changes++; }
  void OnPoolFailed(const absl::Status&) override { failures++; }

  std::atomic<uint32_t> registered{0};
  std::atomic<uint32_t> evicted{0};
  std::atomic<uint32_t> evicted_invalid{0};
  std::atomic<uint32_t> replaced{0};
  std::atomic<uint32_t> view_changes{0};
  std::atomic<uint32_t> failures{0};
};

// Counts what the coalescer reports (late results above all).
class CoalescerEvents final : public proxy::CoalescerObserver {
 public:
  void OnRefused(uint8_t, proxy::RefusalReason reason) override {
    if (reason == proxy::RefusalReason::kInvalidInput) refused_invalid++;
    else refused_bounds++;
  }
  void OnLateResultsDropped(uint8_t, uint32_t caller_count) override {
    late_results += caller_count;
  }
  std::atomic<uint32_t> refused_invalid{0};
  std::atomic<uint32_t> refused_bounds{0};
  std::atomic<uint32_t> late_results{0};
};

struct HarnessOptions {
  uint8_t replica_count = 1;
  uint32_t clients_max = kClientsMaxDefault;
  uint32_t sessions = 4;
  uint32_t session_budget = 8;
  // Short in eviction tests: an evicted session that stays idle learns of it from its next
  // keep-warm request.
  absl::Duration keep_warm_interval = absl::Seconds(5);
  uint64_t queued_events_max = 1'000'000;
  uint32_t callers_max = 100'000;
  // Null: absl::Now.
  Clock* clock = nullptr;
};

class Harness {
 public:
  explicit Harness(HarnessOptions options)
      : machine_({.batch_size_limit = kBatchSizeLimitMax}),
        coalescer_(proxy::CoalescerOptions{.queued_events_max = options.queued_events_max,
                                           .callers_max = options.callers_max,
                                           .clock = options.clock,
                                           .observer = &coalescer_events_}),
        spy_(&coalescer_) {
    devcluster::ServerOptions server_options;
    server_options.addresses.assign(options.replica_count, {"127.0.0.1", 0});
    server_options.protocol.cluster = kClusterId;
    server_options.protocol.replica_count = options.replica_count;
    server_options.protocol.clients_max = options.clients_max;
    const absl::Status valid = devcluster::ValidateServerOptions(server_options);
    EXPECT_TRUE(valid.ok()) << valid;
    server_ = std::make_unique<devcluster::Server>(cluster_io_.io_context(), &machine_,
                                                   server_options);
    cluster_io_.RunAndWait([this] {
      const absl::Status started = server_->Start();
      EXPECT_TRUE(started.ok()) << started;
    });
    absl::StatusOr<std::unique_ptr<pool::SessionPool>> pool = pool::SessionPool::Create(
        pool_io_.io_context(),
        {.cluster = kClusterId,
         .replica_addresses = addresses(),
         .sessions = options.sessions,
         .session_budget = options.session_budget,
         .keep_warm_interval = options.keep_warm_interval,
         .replacement_backoff_min = absl::Milliseconds(10),
         .replacement_backoff_max = absl::Milliseconds(200)},
        &spy_, &pool_events_);
    EXPECT_TRUE(pool.ok()) << pool.status();
    pool_ = *std::move(pool);
    pool_->SetBatchSizeLimitCallback(
        [this](uint32_t limit) { (void)coalescer_.SetBatchSizeLimit(limit); });
    coalescer_.SetWake([raw = pool_.get()] { raw->Wake(); });
    pool_->Start();
  }

  ~Harness() { Shutdown(); }

  // Resumes the cluster, drains the pool, stops both sides. Idempotent.
  void Shutdown() {
    if (pool_ != nullptr) {
      server_->Resume();
      std::atomic<bool> drained{false};
      pool_->Drain(absl::Seconds(5), [&drained] { drained = true; });
      EXPECT_TRUE(PollUntil([&] { return drained.load(); })) << "the pool did not drain";
      pool_io_.Stop();
      pool_.reset();
    }
    if (server_ != nullptr) {
      server_->Stop();
      cluster_io_.Stop();
      server_.reset();
    }
  }

  std::vector<ReplicaAddress> addresses() const {
    std::vector<ReplicaAddress> list;
    for (uint16_t port : server_->ports()) list.push_back({"127.0.0.1", port});
    return list;
  }

  bool WaitRegistered(uint32_t sessions) {
    return PollUntil([&] { return pool_->registered_session_count() >= sessions; });
  }

  proxy::Coalescer& coalescer() { return coalescer_; }
  devcluster::Server& server() { return *server_; }
  pool::SessionPool& pool() { return *pool_; }
  Spy& spy() { return spy_; }
  PoolEvents& pool_events() { return pool_events_; }
  CoalescerEvents& coalescer_events() { return coalescer_events_; }

 private:
  pool::testing::IoThread cluster_io_;
  devcluster::StateMachine machine_;  // Used on cluster_io_'s thread only.
  std::unique_ptr<devcluster::Server> server_;
  CoalescerEvents coalescer_events_;
  proxy::Coalescer coalescer_;
  Spy spy_;
  PoolEvents pool_events_;
  pool::testing::IoThread pool_io_;
  std::unique_ptr<pool::SessionPool> pool_;
};

// A plain client session of the cluster (client_core Session over TcpTransport) that registers
// and then stays idle: it takes a slot in the cluster's session table.
class RawClient {
 public:
  explicit RawClient(const std::vector<ReplicaAddress>& addresses) {
    absl::StatusOr<std::unique_ptr<TcpTransport>> transport =
        TcpTransport::Create(&io_.io_context(), {.cluster = kClusterId, .addresses = addresses});
    EXPECT_TRUE(transport.ok()) << transport.status();
    transport_ = *std::move(transport);
    session_ = std::make_unique<Session>(SessionOptions{.cluster = kClusterId}, transport_.get(),
                                         SystemClock(), &observer_);
    io_.RunAndWait([this] {
      transport_->Start(session_.get());
      session_->Register();
      ScheduleTick();
    });
  }
  ~RawClient() {
    io_.RunAndWait([this] {
      timer_.reset();
      transport_->Shutdown();
    });
    io_.Stop();
  }

  bool WaitRegistered() { return PollUntil([&] { return observer_.registered.load(); }); }

 private:
  struct Observer final : SessionObserver {
    void OnRegistered(uint64_t, uint32_t) override { registered = true; }
    std::atomic<bool> registered{false};
  };
  void ScheduleTick() {
    if (timer_ == nullptr) timer_ = std::make_unique<asio::steady_timer>(io_.io_context());
    timer_->expires_after(std::chrono::milliseconds(kTickMs));
    timer_->async_wait([this](asio::error_code error) {
      if (error || timer_ == nullptr) return;
      session_->Tick();
      ScheduleTick();
    });
  }

  pool::testing::IoThread io_;
  Observer observer_;
  std::unique_ptr<TcpTransport> transport_;
  std::unique_ptr<Session> session_;
  std::unique_ptr<asio::steady_timer> timer_;
};

}  // namespace tb::integration
