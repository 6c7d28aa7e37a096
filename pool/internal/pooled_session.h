// One session of a SessionPool: a client_core Session, its own TCP transport, the message it
// carries and its keep-warm clock. Internal to pool/; the pool owns and replaces these.
//
//   auto session = PooledSession::Create(io_context, config, &owner);
//   (*session)->Start();          // owner.OnSessionRegistered(session) once registered
//   (*session)->Pull();           // takes the next message from the source and sends it
//   (*session)->Tick();           // every tick: retries, pings, keep-warm
//
// Threading: the pool's I/O thread only. Lifetime: callbacks to the owner may arrive from inside
// Tick(), Pull() or the transport's handlers; the owner must not destroy the PooledSession inside
// them (post that instead), and must call Close() before destroying it.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "client_core/clock.h"
#include "client_core/header.h"
#include "client_core/session.h"
#include "client_core/tcp_transport.h"
#include "pool/internal/resubmission.h"
#include "pool/message_source.h"
#include "pool/pool_observer.h"

namespace asio {
class io_context;
}  // namespace asio

namespace tb::pool::internal {

class PooledSession;

// What a PooledSession reports to the pool (on the I/O thread).
class PooledSessionOwner {
 public:
  virtual ~PooledSessionOwner() = default;
  // The register reply arrived; batch_size_limit() is now valid.
  virtual void OnSessionRegistered(PooledSession* session) = 0;
  // The cluster evicted the session; it will never work again. Must not destroy it here.
  virtual void OnSessionEvicted(PooledSession* session, EvictionReason reason) = 0;
  // The session is registered and idle: its next message (one that fits `batch_size_limit`), or
  // nullopt when there is nothing to send.
  virtual std::optional<PooledMessage> TakeMessage(uint32_t batch_size_limit) = 0;
  // A message failed on this session (message.attempts already counts it) with `failure`, what
  // its callers hear unless the owner sends it again on another session, which it may do only
  // when `churn` is set (ChurnReason). Must not destroy the session.
  virtual void OnMessageFailed(PooledMessage message, absl::Status failure,
                               std::optional<ResubmissionReason> churn) = 0;
};

// lookup_accounts with one empty batch: the multi-batch trailer alone (PROTOCOL.md §11.1,
// T(16, 1) = 16 bytes: 12 bytes 0xFF, count_0 = 0, n = 1). It commits an op without reading or
// writing anything, which is all keep-warm needs.
inline constexpr uint8_t kKeepWarmOperation = 140;
inline constexpr uint32_t kKeepWarmBodySize = 16;
std::vector<uint8_t> KeepWarmBody();

using MessageCallback = absl::AnyInvocable<void(absl::StatusOr<ClusterReply>) &&>;

class PooledSession final : public SessionObserver {
 public:
  struct Config {
    SessionOptions session;
    TcpTransportOptions transport;
    // Ticks without a commit after which an idle session sends a keep-warm request (>= 1).
    uint64_t keep_warm_ticks = 500;
    PoolObserver* observer = nullptr;     // Required (the pool passes a no-op one when unset).
    Clock* clock = nullptr;      // Required.
  };

  // kInvalidArgument when the transport options are invalid.
  static absl::StatusOr<std::unique_ptr<PooledSession>> Create(asio::io_context* io_context,
                                                               Config config,
                                                               PooledSessionOwner* owner);
  ~PooledSession() override;
  PooledSession(const PooledSession&) = delete;
  PooledSession& operator=(const PooledSession&) = delete;

  // Connects to every replica and registers. Call once.
  void Start();
  // Drives the session's timers and, when idle for keep_warm_ticks, sends a keep-warm request.
  void Tick();
  // While registered, idle and pulling: takes messages from the owner until one is in flight or
  // there are none. A message the session refuses goes back to the owner (outcome not_applied).
  void Pull();
  // Stops (false) or resumes (true) taking messages from the source and keep-warm requests.
  void set_pulling(bool pulling) { pulling_ = pulling; }
  // Hands the message in flight back to the owner failed with `reason` (outcome unknown), closes
  // every connection. After it no callback runs. Idempotent.
  void Close(absl::Status reason);

  u128 client_id() const { return session_->client_id(); }
  bool registered() const { return session_->ready(); }
  bool evicted() const { return session_->state() == Session::State::kEvicted; }
  uint32_t batch_size_limit() const { return session_->batch_size_limit(); }
  uint64_t session_number() const { return session_->session_number(); }
  // A message from the source (not a keep-warm or the register) is waiting for its reply.
  bool message_in_flight() const { return message_.has_value(); }
  // Requests (messages and keep-warms) this session got a reply for.
  uint64_t commit_count() const { return commit_count_; }
  // Replies this session got: its register reply and every commit. Grows while the cluster
  // answers it; the pool compares sessions' counts to tell a stuck session from an outage.
  uint64_t reply_count() const { return commit_count_ + (registered_once_ ? 1 : 0); }
  // A request (message, keep-warm or the register) waits for its reply.
  bool busy() const { return session_->busy(); }

  // SessionObserver.
  void OnRegistered(uint64_t session, uint32_t batch_size_limit) override;
  void OnEvicted(EvictionReason reason) override;
  void OnViewChanged(uint32_t view) override;
  void OnResend(uint32_t attempts) override;

 private:
  PooledSession(Config config, std::unique_ptr<TcpTransport> transport, PooledSessionOwner* owner);
  bool SendMessage(PooledMessage message);
  void FailMessage(const absl::Status& failure);
  void OnMessageDone(uint8_t operation, uint64_t sent_at_ns, absl::StatusOr<SessionReply> reply);
  void SendKeepWarm();
  void OnKeepWarmDone(absl::StatusOr<SessionReply> reply);

  const Config config_;
  PooledSessionOwner* const owner_;
  std::unique_ptr<TcpTransport> transport_;
  std::unique_ptr<Session> session_;
  bool pulling_ = true;
  bool pulling_now_ = false;  // Guards Pull() against re-entry from a message's on_done.
  bool closed_ = false;
  bool eviction_reported_ = false;
  // The message in flight, kept whole (body included) so that the owner can send it again on
  // another session if this one loses it before the cluster executed it.
  std::optional<PooledMessage> message_;
  uint64_t ticks_ = 0;
  uint64_t last_commit_tick_ = 0;
  uint64_t commit_count_ = 0;
  bool registered_once_ = false;
};

}  // namespace tb::pool::internal
