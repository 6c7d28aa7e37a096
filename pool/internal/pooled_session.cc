#include "pool/internal/pooled_session.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "client_core/assert.h"
#include "client_core/outcome.h"
#include "client_core/status_macros.h"

namespace tb::pool::internal {
namespace {

// The status a message's caller sees when its session could not deliver the reply. An eviction
// becomes kAborted naming the reason, keeping the session's Outcome (no_session before
// execution: not applied; otherwise unknown); anything else (Close() on drain or shutdown)
// passes through as the session reported it.
absl::Status MessageFailure(const absl::Status& status) {
  TB_ASSERT(!status.ok());
  if (!GetEvictionReason(status).has_value()) return status;
  return WithOutcome(absl::AbortedError(status.message()),
                     GetOutcome(status).value_or(Outcome::kUnknown));
}

}  // namespace

std::vector<uint8_t> KeepWarmBody() {
  std::vector<uint8_t> body(kKeepWarmBodySize, 0xFF);
  body[12] = 0;  // count_0 = 0 (u16).
  body[13] = 0;
  body[14] = 1;  // n = 1 (u16).
  body[15] = 0;
  return body;
}

absl::StatusOr<std::unique_ptr<PooledSession>> PooledSession::Create(asio::io_context* io_context,
                                                                     Config config,
                                                                     PooledSessionOwner* owner) {
  TB_ASSERT(config.observer != nullptr);
  TB_ASSERT(config.clock != nullptr);
  TB_ASSERT(owner != nullptr);
  TB_ASSERT(config.keep_warm_ticks >= 1);
  TB_ASSIGN_OR_RETURN(std::unique_ptr<TcpTransport> transport,
                      TcpTransport::Create(io_context, config.transport));
  return std::unique_ptr<PooledSession>(
      new PooledSession(std::move(config), std::move(transport), owner));
}

PooledSession::PooledSession(Config config, std::unique_ptr<TcpTransport> transport,
                             PooledSessionOwner* owner)
    : config_(std::move(config)), owner_(owner), transport_(std::move(transport)) {
  session_ = std::make_unique<Session>(config_.session, transport_.get(), config_.clock, this);
}

PooledSession::~PooledSession() {
  TB_ASSERT(closed_, "Close() the session before destroying it");
}

void PooledSession::Start() {
  TB_ASSERT(session_->state() == Session::State::kIdle);
  transport_->Start(session_.get());
  session_->Register();
}

void PooledSession::Tick() {
  if (closed_) return;
  ticks_++;
  session_->Tick();
  if (!session_->idle() || !pulling_) return;
  if (ticks_ - last_commit_tick_ < config_.keep_warm_ticks) return;
  // Real work commits just as well, and costs the cluster nothing extra.
  Pull();
  if (session_->idle()) SendKeepWarm();
}

void PooledSession::Pull() {
  if (closed_ || !pulling_ || pulling_now_) return;
  pulling_now_ = true;
  // Each pass either puts a message in flight (ending the loop) or fails one message the session
  // refused, so the loop ends within the source's own bound on queued messages.
  while (session_->idle()) {
    std::optional<PooledMessage> message = owner_->TakeMessage(session_->batch_size_limit());
    if (!message.has_value()) break;
    if (SendMessage(std::move(*message))) break;
  }
  pulling_now_ = false;
}

bool PooledSession::SendMessage(PooledMessage message) {
  TB_ASSERT(!message_.has_value());
  const uint8_t operation = message.message.operation;
  const uint64_t sent_at_ns = config_.clock->NowNs();
  // The message waits in a member rather than inside the session's callback, so that a request
  // the session refuses (which drops its callback) or loses can go back to the owner whole. The
  // session only reads the body while framing its wire message, so it gets a view, not a copy;
  // message_ keeps the body until the callback runs, for the owner to send it again elsewhere.
  message_ = std::move(message);
  absl::Status status = session_->SendRequest(
      operation, message_->message.body,
      [this, operation, sent_at_ns](absl::StatusOr<SessionReply> reply) {
        OnMessageDone(operation, sent_at_ns, std::move(reply));
      });
  if (!status.ok()) {
    FailMessage(WithOutcome(status, Outcome::kNotApplied));
    return false;
  }
  return true;
}

// `failure` as the Session reported it: churn is judged on it before MessageFailure rewrites it.
void PooledSession::FailMessage(const absl::Status& failure) {
  TB_ASSERT(message_.has_value());
  PooledMessage message = std::move(*message_);
  message_.reset();
  message.attempts++;
  owner_->OnMessageFailed(std::move(message), MessageFailure(failure), ChurnReason(failure));
}

void PooledSession::OnMessageDone(uint8_t operation, uint64_t sent_at_ns,
                                  absl::StatusOr<SessionReply> reply) {
  TB_ASSERT(message_.has_value());
  if (!reply.ok()) {
    FailMessage(reply.status());
    return;
  }
  MessageCallback on_done = std::move(message_->message.on_done);
  message_.reset();
  last_commit_tick_ = ticks_;
  commit_count_++;
  const uint64_t now_ns = config_.clock->NowNs();
  config_.observer->OnRoundTrip(operation,
                                absl::Nanoseconds(now_ns >= sent_at_ns ? now_ns - sent_at_ns : 0));
  std::move(on_done)(ClusterReply{
      .op = reply->op, .timestamp = reply->timestamp, .body = std::move(reply->body)});
  Pull();
}

void PooledSession::SendKeepWarm() {
  absl::Status status = session_->SendRequest(
      kKeepWarmOperation, KeepWarmBody(),
      [this](absl::StatusOr<SessionReply> reply) { OnKeepWarmDone(std::move(reply)); });
  // The body is valid by construction and the session is idle and registered.
  TB_ASSERT(status.ok(), "keep-warm request refused");
  // Count it as a commit attempt now so a slow reply does not trigger a second one per tick.
  last_commit_tick_ = ticks_;
}

void PooledSession::OnKeepWarmDone(absl::StatusOr<SessionReply> reply) {
  if (!reply.ok()) return;  // Eviction or Close(): the owner hears of it separately.
  last_commit_tick_ = ticks_;
  commit_count_++;
  config_.observer->OnKeepWarm(session_->client_id());
  Pull();
}

void PooledSession::Close(absl::Status reason) {
  TB_ASSERT(!reason.ok());
  if (closed_) return;
  pulling_ = false;
  session_->Close(std::move(reason));
  transport_->Shutdown();
  closed_ = true;
}

void PooledSession::OnRegistered(uint64_t session, uint32_t batch_size_limit) {
  registered_once_ = true;
  last_commit_tick_ = ticks_;
  owner_->OnSessionRegistered(this);
}

void PooledSession::OnEvicted(EvictionReason reason) {
  if (eviction_reported_) return;  // A second eviction message for the same session.
  eviction_reported_ = true;
  config_.observer->OnSessionEvicted(session_->client_id(), reason);
  owner_->OnSessionEvicted(this, reason);
}

void PooledSession::OnViewChanged(uint32_t view) {
  config_.observer->OnViewChange(session_->client_id(), view);
}

void PooledSession::OnResend(uint32_t attempts) {
  config_.observer->OnRequestResent(session_->client_id(), attempts);
}

}  // namespace tb::pool::internal
