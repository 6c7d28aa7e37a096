#include "pool/session_pool.h"

#include <algorithm>
#include <atomic>
#include <deque>
#include <utility>
#include <vector>

#include <asio.hpp>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "client_core/assert.h"
#include "client_core/clock.h"
#include "client_core/outcome.h"
#include "client_core/release.h"
#include "client_core/session.h"
#include "pool/internal/pooled_session.h"
#include "pool/internal/resubmission.h"

namespace tb::pool {
namespace internal {
namespace {

PoolObserver* NoOpObserver() {
  static PoolObserver* const observer = new PoolObserver();
  return observer;
}

// Whole ticks covering `duration` (rounded up).
uint64_t DurationTicks(absl::Duration duration, absl::Duration tick) {
  if (duration <= absl::ZeroDuration()) return 0;
  return static_cast<uint64_t>(absl::Ceil(duration, tick) / tick);
}

// Queued messages failed in one turn of the event loop once the pool no longer sends.
constexpr uint32_t kFailedMessagesPerTurnMax = 1024;

bool IsReleaseEviction(EvictionReason reason) {
  return reason == EvictionReason::kClientReleaseTooLow ||
         reason == EvictionReason::kClientReleaseTooHigh;
}

}  // namespace

// Runs the sessions of one SessionPool on the I/O thread. Shared with the handlers it posts, which
// hold it weakly, so a handler that runs after the pool is gone does nothing.
class PoolCore final : public PooledSessionOwner, public std::enable_shared_from_this<PoolCore> {
 public:
  PoolCore(asio::io_context& io_context, SessionPoolOptions options, MessageSource* source,
           PoolObserver* observer)
      : io_context_(io_context),
        options_(std::move(options)),
        source_(source),
        observer_(observer != nullptr ? observer : NoOpObserver()),
        timer_(io_context),
        slots_(options_.sessions) {}

  ~PoolCore() override { Shutdown(absl::UnavailableError("session pool destroyed")); }

  void SetBatchSizeLimitCallback(absl::AnyInvocable<void(uint32_t)> callback) {
    batch_size_limit_callback_ = std::move(callback);
  }

  // Runs `function` on the I/O thread if the core still exists then.
  template <typename Function>
  void Post(Function function) {
    asio::post(io_context_, [weak = weak_from_this(), function = std::move(function)]() mutable {
      if (std::shared_ptr<PoolCore> core = weak.lock()) function(*core);
    });
  }

  // New work in the source. Skipped while every session is busy: each one pulls when its reply
  // comes, so a wake would find no one to take the work (see wake_useful_).
  void WakeForNewWork() {
    if (!wake_useful_.load()) return;
    Wake();
  }

  void Wake() {
    if (wake_posted_.exchange(true)) return;
    Post([](PoolCore& core) {
      core.wake_posted_ = false;
      core.OnWake();
    });
  }

  void OnStart();
  void OnDrain(absl::Duration timeout, absl::AnyInvocable<void()> on_drained);
  void Shutdown(const absl::Status& reason);

  bool ready() const { return registered_count_.load() > 0 && !stopped_.load(); }
  uint32_t registered_count() const { return registered_count_.load(); }
  absl::Status status() const {
    absl::MutexLock lock(&status_mutex_);
    return status_;
  }

  // PooledSessionOwner.
  void OnSessionRegistered(PooledSession* session) override;
  void OnSessionEvicted(PooledSession* session, EvictionReason reason) override;
  std::optional<PooledMessage> TakeMessage(uint32_t batch_size_limit) override;
  void OnMessageFailed(PooledMessage message, absl::Status failure,
                       std::optional<ResubmissionReason> churn) override;

 private:
  // Pool life cycle, on the I/O thread.
  enum class State : uint8_t {
    kCreated,   // Start() not yet run.
    kRunning,   // Sessions register, pull and are replaced when evicted.
    kDraining,  // No new messages; waiting for replies in flight.
    kStopped,   // Drained, failed or destroyed: no sessions, no timer.
  };

  // One place in the pool: the session occupying it, or when the next one starts.
  struct Slot {
    std::unique_ptr<PooledSession> session;
    uint64_t start_at_tick = 0;  // When `session` is null: tick at which a replacement starts.
    uint32_t failures = 0;       // Sessions lost in a row without committing anything.
    u128 previous_client = 0;    // The client id this slot held last (0: none).
    uint64_t registered_tick = 0;  // When `session` registered (0: not yet).
    // Stuck-session detection (CheckStuckSessions): `session`'s reply_count() at the last tick,
    // and the first tick at which another session got a reply while `session` waited (0: none).
    uint64_t reply_count_seen = 0;
    uint64_t busy_tick = 0;  // The first tick that saw its current request in flight (0: idle).
    uint64_t answered_elsewhere_tick = 0;
    bool replied = false;  // Scratch of CheckStuckSessions: a reply since the last tick.
    bool stuck_kept_reported = false;  // OnSessionStuckKept ran for the current request.

    // Idle, answered or new: any wait for a reply starts over.
    void RestartStuckWait() {
      busy_tick = 0;
      answered_elsewhere_tick = 0;
      stuck_kept_reported = false;
    }
  };

  // A client id the pool gave up on without the cluster evicting it: it may still hold a slot in
  // the cluster's session table, so it counts against session_budget until an eviction shows
  // the table has turned over past it.
  struct RetiredClient {
    u128 client = 0;
    uint64_t retired_tick = 0;
  };

  // A message that came back not applied because of session churn, waiting for another session.
  struct Resubmission {
    PooledMessage message;
    absl::Status failure;  // What its callers hear if it cannot travel again.
  };

  void OnWake();
  // TakeMessage hands a message to an idle session: clears wake_useful_ if it was the last one.
  void NoteSessionTakingWork();
  void ScheduleTick();
  void OnTick();
  void StartSession(Slot& slot);
  void HandleEviction(PooledSession* session, EvictionReason reason);
  void CheckStuckSessions();
  void RetireSession(Slot& slot);
  void CheckDrain();
  void FinishDrain();
  // How the pool stops, for the observer.
  enum class StopKind : uint8_t { kFailed, kDrained, kDestroyed };
  void Stop(StopKind kind, const absl::Status& status, const absl::Status& in_flight_failure);
  void FailQueuedMessages(const absl::Status& status);
  void ExpireResubmissions(absl::Time now);
  uint32_t MessagesInFlightCount() const;
  void UpdateRegistered();
  uint32_t LiveSessionCount() const;

  asio::io_context& io_context_;
  const SessionPoolOptions options_;
  MessageSource* const source_;
  PoolObserver* const observer_;
  asio::steady_timer timer_;
  std::vector<Slot> slots_;
  // Taken by idle sessions before the source, oldest first. At most one per slot: only a message
  // in flight comes back, and each session carries one (asserted in OnMessageFailed).
  std::deque<Resubmission> resubmissions_;
  // At most session_budget - sessions (checked where one is added).
  std::vector<RetiredClient> retired_;
  uint64_t last_reply_tick_ = 0;  // The last tick at which any session got a reply.
  absl::AnyInvocable<void(uint32_t)> batch_size_limit_callback_;

  State state_ = State::kCreated;
  uint64_t tick_ = 0;
  uint32_t batch_size_limit_reported_ = 0;
  uint64_t drain_deadline_tick_ = 0;
  absl::AnyInvocable<void()> on_drained_;

  std::atomic<bool> wake_posted_{false};
  // False only while, at the I/O thread's last look, every live session had a request in flight
  // and the pool was running. It is set before each look at the source (TakeMessage), so a
  // caller that queues work after a session found the source empty reads true and wakes it: the
  // source's own lock orders the two.
  std::atomic<bool> wake_useful_{true};
  std::atomic<uint32_t> registered_count_{0};
  std::atomic<bool> stopped_{false};
  mutable absl::Mutex status_mutex_;
  absl::Status status_ ABSL_GUARDED_BY(status_mutex_);
};

void PoolCore::OnStart() {
  TB_ASSERT(state_ == State::kCreated, "Start() called twice");
  state_ = State::kRunning;
  for (Slot& slot : slots_) {
    StartSession(slot);
    if (state_ != State::kRunning) return;
  }
  ScheduleTick();
}

void PoolCore::StartSession(Slot& slot) {
  TB_ASSERT(slot.session == nullptr);
  TB_ASSERT(LiveSessionCount() + retired_.size() < options_.session_budget);
  PooledSession::Config config{
      .session = {.cluster = options_.cluster},
      .transport = {.cluster = options_.cluster, .addresses = options_.replica_addresses},
      .keep_warm_ticks =
          std::max<uint64_t>(1, DurationTicks(options_.keep_warm_interval, options_.tick_interval)),
      .observer = observer_,
      .clock = SystemClock(),
  };
  absl::StatusOr<std::unique_ptr<PooledSession>> session =
      PooledSession::Create(&io_context_, std::move(config), this);
  if (!session.ok()) {
    // The options were validated, so this is the environment refusing (e.g. no resources).
    Stop(StopKind::kFailed,
         absl::UnavailableError(absl::StrCat("cannot open a session: ", session.status().message())),
         absl::UnavailableError("session pool failed"));
    return;
  }
  slot.session = std::move(*session);
  slot.registered_tick = 0;
  slot.reply_count_seen = 0;
  slot.RestartStuckWait();
  if (slot.previous_client != 0) {
    observer_->OnSessionReplaced(slot.previous_client, slot.session->client_id());
  }
  slot.session->Start();
}

void PoolCore::ScheduleTick() {
  timer_.expires_after(absl::ToChronoNanoseconds(options_.tick_interval));
  timer_.async_wait([weak = weak_from_this()](const std::error_code& error) {
    if (error) return;
    if (std::shared_ptr<PoolCore> core = weak.lock()) core->OnTick();
  });
}

void PoolCore::OnTick() {
  if (state_ == State::kStopped) return;
  tick_++;
  ExpireResubmissions(absl::Now());
  for (Slot& slot : slots_) {
    if (slot.session != nullptr) {
      slot.session->Tick();
    } else if (state_ == State::kRunning && tick_ >= slot.start_at_tick) {
      StartSession(slot);
    }
    if (state_ == State::kStopped) return;
  }
  if (state_ == State::kRunning) CheckStuckSessions();
  if (state_ == State::kDraining) CheckDrain();
  if (state_ != State::kStopped) ScheduleTick();
}

void PoolCore::OnWake() {
  if (state_ == State::kStopped) {
    // Nothing will ever carry these: fail them rather than leave their callers waiting.
    FailQueuedMessages(absl::UnavailableError(absl::StrCat("session pool stopped: ",
                                                           status().message())));
    return;
  }
  if (state_ == State::kDraining) {
    FailQueuedMessages(absl::UnavailableError("session pool draining"));
    return;
  }
  if (state_ != State::kRunning) return;
  for (Slot& slot : slots_) {
    if (slot.session != nullptr) slot.session->Pull();
  }
}

void PoolCore::OnSessionRegistered(PooledSession* session) {
  for (Slot& slot : slots_) {
    if (slot.session.get() == session) slot.registered_tick = tick_ + 1;  // Never 0.
  }
  // Counts first, so an observer that sees the registration also sees ready().
  UpdateRegistered();
  observer_->OnSessionRegistered(session->client_id(), session->session_number(),
                                 session->batch_size_limit());
  if (state_ == State::kRunning) session->Pull();
}

void PoolCore::OnSessionEvicted(PooledSession* session, EvictionReason reason) {
  // Called from inside the session's own message handling: replace it from a fresh handler.
  Post([session, reason](PoolCore& core) { core.HandleEviction(session, reason); });
}

std::optional<PooledMessage> PoolCore::TakeMessage(uint32_t batch_size_limit) {
  // Before the source's lock, so that work queued after this look wakes the pool (wake_useful_).
  wake_useful_.store(true);
  // A resubmitted message goes first: it was taken from the source before anything there.
  while (!resubmissions_.empty()) {
    const absl::Time now = absl::Now();
    Resubmission next = std::move(resubmissions_.front());
    resubmissions_.pop_front();
    // Sessions of one cluster share its batch_size_limit; a smaller one means the cluster was
    // reconfigured, and the message would never fit again.
    const OutgoingMessage& outgoing = next.message.message;
    if (outgoing.body.size() <= batch_size_limit && now < outgoing.deadline) {
      NoteSessionTakingWork();
      return std::move(next.message);
    }
    std::move(next.message.message.on_done)(std::move(next.failure));
  }
  std::optional<OutgoingMessage> message = source_->TakeMessage(batch_size_limit);
  if (!message.has_value()) return std::nullopt;
  NoteSessionTakingWork();
  return PooledMessage{.message = std::move(*message)};
}

void PoolCore::NoteSessionTakingWork() {
  // The caller is one idle session; if it is the only one, every session is about to be busy.
  uint32_t idle = 0;
  for (const Slot& slot : slots_) {
    if (slot.session != nullptr && slot.session->registered() && !slot.session->busy()) idle++;
  }
  if (idle <= 1 && state_ == State::kRunning) wake_useful_.store(false);
}

void PoolCore::OnMessageFailed(PooledMessage message, absl::Status failure,
                               std::optional<ResubmissionReason> churn) {
  // Its session may be idle now without pulling again: let new work wake the pool.
  wake_useful_.store(true);
  // Only while running: a drain or a stop answers what it cannot carry.
  if (!churn.has_value() || state_ != State::kRunning || !MayResubmit(message, absl::Now())) {
    std::move(message.message.on_done)(std::move(failure));
    return;
  }
  observer_->OnMessageResubmitted(*churn, message.attempts);
  // Its on_done has not run, so the coalescer still holds back the later calls of its ordering
  // keys: sending it again keeps their order.
  resubmissions_.push_back({.message = std::move(message), .failure = std::move(failure)});
  TB_ASSERT(resubmissions_.size() + MessagesInFlightCount() <= slots_.size(),
            "only messages in flight come back, one per session");
  Wake();
}

void PoolCore::ExpireResubmissions(absl::Time now) {
  // Callers without a session for so long hear the error instead of waiting past their deadline.
  for (auto it = resubmissions_.begin(); it != resubmissions_.end();) {
    if (now < it->message.message.deadline) {
      ++it;
      continue;
    }
    Resubmission expired = std::move(*it);
    it = resubmissions_.erase(it);
    std::move(expired.message.message.on_done)(std::move(expired.failure));
  }
}

uint32_t PoolCore::MessagesInFlightCount() const {
  return static_cast<uint32_t>(std::count_if(slots_.begin(), slots_.end(), [](const Slot& slot) {
    return slot.session != nullptr && slot.session->message_in_flight();
  }));
}

void PoolCore::HandleEviction(PooledSession* session, EvictionReason reason) {
  auto slot = std::find_if(slots_.begin(), slots_.end(),
                           [session](const Slot& slot) { return slot.session.get() == session; });
  // Not found: already closed by a drain or a failure. Not evicted: the address now belongs to
  // a replacement, and this report was about its predecessor.
  if (slot == slots_.end() || !slot->session->evicted()) return;
  if (IsReleaseEviction(reason)) {
    // Every new session would announce the same release and be refused the same way.
    const absl::Status status = absl::FailedPreconditionError(
        absl::StrCat("the cluster refused client release ", ReleaseToString(kReleaseClient), ": ",
                     EvictionReasonName(reason)));
    Stop(StopKind::kFailed, status, absl::UnavailableError(status.message()));
    return;
  }
  if (reason == EvictionReason::kNoSession && slot->registered_tick != 0) {
    // The cluster evicts the least recently committed session first, and a retired client never
    // commits again: those retired before this session registered were evicted before it.
    std::erase_if(retired_, [registered = slot->registered_tick](const RetiredClient& retired) {
      return retired.retired_tick < registered;
    });
  }
  if (slot->session->commit_count() > 0) slot->failures = 0;
  slot->failures = std::min<uint32_t>(slot->failures + 1, 32);
  slot->previous_client = slot->session->client_id();
  slot->session->Close(absl::UnavailableError("session evicted"));
  slot->session.reset();
  // Backoff doubles with each session lost before it committed anything, so a cluster that
  // evicts every new session is not flooded with registrations.
  slot->start_at_tick =
      tick_ + DurationTicks(ReplacementBackoff(options_, slot->failures), options_.tick_interval);
  UpdateRegistered();
}

// A session counts as stuck when its request has waited session_stuck_timeout since another
// session first got a reply during that wait, and the cluster answered some session within the
// last session_stuck_timeout. The first condition keeps a session whose request is merely slow
// behind an outage (the cluster just came back and resends are backing off); the second keeps
// every session when the whole cluster is silent.
void PoolCore::CheckStuckSessions() {
  const uint64_t stuck_ticks = DurationTicks(options_.session_stuck_timeout, options_.tick_interval);
  uint32_t replied_count = 0;  // Sessions that got a reply since the last tick.
  for (Slot& slot : slots_) {
    slot.replied = false;
    if (slot.session == nullptr) continue;
    const uint64_t replies = slot.session->reply_count();
    if (replies == slot.reply_count_seen) continue;
    slot.replied = true;
    slot.reply_count_seen = replies;
    replied_count++;
  }
  if (replied_count > 0) last_reply_tick_ = tick_;
  for (Slot& slot : slots_) {
    if (slot.session == nullptr) continue;
    if (!slot.session->busy() || slot.replied) {
      slot.RestartStuckWait();
      if (!slot.session->busy()) continue;
    }
    if (slot.busy_tick == 0) {
      // Its request started since the last tick: replies seen now may have come before it.
      slot.busy_tick = tick_;
      continue;
    }
    if (slot.answered_elsewhere_tick == 0) {
      if (replied_count > 0) slot.answered_elsewhere_tick = tick_;
      continue;
    }
    const bool cluster_answering = tick_ - last_reply_tick_ < stuck_ticks;
    if (tick_ - slot.answered_elsewhere_tick >= stuck_ticks && cluster_answering) {
      RetireSession(slot);
      if (state_ != State::kRunning) return;
    }
  }
}

void PoolCore::RetireSession(Slot& slot) {
  // Its client id may still hold a slot in the cluster's table, and every pool slot will hold
  // one again: retire only while retired ids fit in session_budget - sessions. Otherwise the
  // session keeps waiting, as it would without this check, and that is said once.
  const u128 client = slot.session->client_id();
  const absl::Duration silent_for =
      options_.tick_interval * static_cast<int64_t>(tick_ - slot.answered_elsewhere_tick);
  if (retired_.size() >= options_.session_budget - options_.sessions) {
    if (!slot.stuck_kept_reported) observer_->OnSessionStuckKept(client, silent_for);
    slot.stuck_kept_reported = true;
    return;
  }
  observer_->OnSessionRetired(client, silent_for);
  retired_.push_back({.client = client, .retired_tick = tick_});
  // The request may have been applied: Close() answers its callers with outcome unknown.
  slot.session->Close(absl::UnavailableError(absl::StrCat(
      "session retired: no reply for ", absl::FormatDuration(options_.session_stuck_timeout),
      " while the cluster answered other sessions")));
  slot.session.reset();
  slot.previous_client = client;
  slot.start_at_tick = tick_ + 1;
  UpdateRegistered();
}

void PoolCore::OnDrain(absl::Duration timeout, absl::AnyInvocable<void()> on_drained) {
  TB_ASSERT(on_drained_ == nullptr, "Drain() called twice");
  on_drained_ = std::move(on_drained);
  if (state_ == State::kCreated || state_ == State::kStopped) {
    FinishDrain();
    return;
  }
  state_ = State::kDraining;
  wake_useful_.store(true);  // Work queued from now on must be failed by OnWake.
  for (Slot& slot : slots_) {
    if (slot.session != nullptr) slot.session->set_pulling(false);
  }
  drain_deadline_tick_ = tick_ + DurationTicks(timeout, options_.tick_interval);
  // No session will take them any more: their callers learn it now, not at the end of the drain.
  FailQueuedMessages(absl::UnavailableError("session pool draining"));
  CheckDrain();
}

void PoolCore::CheckDrain() {
  TB_ASSERT(state_ == State::kDraining);
  if (MessagesInFlightCount() > 0 && tick_ < drain_deadline_tick_) return;
  FinishDrain();
}

void PoolCore::FinishDrain() {
  if (state_ != State::kStopped) {
    Stop(StopKind::kDrained, absl::UnavailableError("session pool drained"),
         absl::UnavailableError("session pool drained before the reply arrived"));
  }
  if (on_drained_ != nullptr) std::move(on_drained_)();
}

void PoolCore::Shutdown(const absl::Status& reason) {
  if (state_ == State::kStopped) return;
  Stop(StopKind::kDestroyed, reason, reason);
}

// Ends the pool for good: closes every session (its message in flight fails with
// `in_flight_failure`, outcome unknown) and fails the messages still queued in the source.
void PoolCore::Stop(StopKind kind, const absl::Status& status,
                    const absl::Status& in_flight_failure) {
  TB_ASSERT(!status.ok());
  TB_ASSERT(state_ != State::kStopped);
  state_ = State::kStopped;
  wake_useful_.store(true);  // Work queued from now on must be failed by OnWake.
  {
    absl::MutexLock lock(&status_mutex_);
    status_ = status;
  }
  stopped_ = true;
  timer_.cancel();
  for (Slot& slot : slots_) {
    if (slot.session == nullptr) continue;
    slot.session->Close(in_flight_failure);
    slot.session.reset();
  }
  UpdateRegistered();
  if (kind == StopKind::kFailed) observer_->OnPoolFailed(status);
  FailQueuedMessages(absl::UnavailableError(absl::StrCat("session pool stopped: ", status.message())));
}

void PoolCore::FailQueuedMessages(const absl::Status& status) {
  while (!resubmissions_.empty()) {
    Resubmission next = std::move(resubmissions_.front());
    resubmissions_.pop_front();
    std::move(next.message.message.on_done)(WithOutcome(status, Outcome::kNotApplied));
  }
  // At most a bounded number per turn of the event loop, so that a source filled as fast as it
  // is emptied cannot hold the I/O thread; the rest fail in the next turn.
  for (uint32_t failed = 0; failed < kFailedMessagesPerTurnMax; failed++) {
    std::optional<OutgoingMessage> message = source_->TakeMessage(kBatchSizeLimitMax);
    if (!message.has_value()) return;
    std::move(message->on_done)(WithOutcome(status, Outcome::kNotApplied));
  }
  Wake();
}

void PoolCore::UpdateRegistered() {
  uint32_t count = 0;
  uint32_t limit = 0;
  for (const Slot& slot : slots_) {
    if (slot.session == nullptr || !slot.session->registered()) continue;
    count++;
    const uint32_t session_limit = slot.session->batch_size_limit();
    limit = limit == 0 ? session_limit : std::min(limit, session_limit);
  }
  registered_count_ = count;
  if (count == 0 || limit == batch_size_limit_reported_) return;
  batch_size_limit_reported_ = limit;
  if (batch_size_limit_callback_ != nullptr) batch_size_limit_callback_(limit);
}

uint32_t PoolCore::LiveSessionCount() const {
  return static_cast<uint32_t>(std::count_if(slots_.begin(), slots_.end(), [](const Slot& slot) {
    return slot.session != nullptr;
  }));
}

}  // namespace internal

absl::StatusOr<std::unique_ptr<SessionPool>> SessionPool::Create(asio::io_context& io_context,
                                                                SessionPoolOptions options,
                                                                MessageSource* source,
                                                                PoolObserver* observer) {
  TB_ASSERT(source != nullptr);
  absl::Status status = ValidateSessionPoolOptions(options);
  if (!status.ok()) return status;
  return std::unique_ptr<SessionPool>(new SessionPool(std::make_shared<internal::PoolCore>(
      io_context, std::move(options), source, observer)));
}

SessionPool::SessionPool(std::shared_ptr<internal::PoolCore> core) : core_(std::move(core)) {}

SessionPool::~SessionPool() = default;

void SessionPool::SetBatchSizeLimitCallback(absl::AnyInvocable<void(uint32_t)> callback) {
  core_->SetBatchSizeLimitCallback(std::move(callback));
}

void SessionPool::Start() {
  core_->Post([](internal::PoolCore& core) { core.OnStart(); });
}

void SessionPool::Wake() { core_->WakeForNewWork(); }

void SessionPool::Drain(absl::Duration timeout, absl::AnyInvocable<void()> on_drained) {
  core_->Post([timeout, on_drained = std::move(on_drained)](internal::PoolCore& core) mutable {
    core.OnDrain(timeout, std::move(on_drained));
  });
}

bool SessionPool::ready() const { return core_->ready(); }
uint32_t SessionPool::registered_session_count() const { return core_->registered_count(); }
absl::Status SessionPool::status() const { return core_->status(); }

}  // namespace tb::pool
