// One TigerBeetle client session (PROTOCOL.md §8): one client id, one registered session, at most
// one request in flight. A socket-free state machine: it sends through a MessageTransport, is fed
// messages through TransportReceiver, reads time from an injected Clock and is driven by
// Tick() every 10 ms, so it is tested without sockets or sleeps.
//
//   tb::Session session(options, &transport, &clock, &observer);
//   transport.Start(&session);  session.Register();           // observer.OnRegistered(limit)
//   TB_RETURN_IF_ERROR(session.SendRequest(146, body, [](absl::StatusOr<tb::SessionReply> r) {}));
//
// What the session does on its own: the register request and a ping to every replica right
// after it; the hash chain (parent = previous reply's context), request numbers, session number,
// view and previous_request_latency; retries of byte-identical requests (600 ms, then
// 2·rtt + 1 + uniform[0, min(999, 2^attempts)] ticks) to the primary (view mod replica_count)
// plus one random backup; pings every 30 s and RTT from pongs; reply matching (duplicates and
// stale replies ignored, inconsistent ones dropped and reported, never asserted on); eviction.
// It never gives up on a request in flight: a caller with a deadline answers its own caller
// "outcome unknown" and lets the request finish (PROTOCOL.md §14.7).
//
// Threading: a Session is used on one thread only (the I/O thread that runs its transport); no
// method is thread-safe. Callbacks (request callbacks and SessionObserver) run synchronously on
// that thread from inside OnMessage(), Tick() or Close(). A request callback may call
// SendRequest() again (the session is idle again by then); no callback may destroy the Session.
#pragma once

#include <cstdint>
#include <optional>
#include <random>
#include <span>
#include <thread>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "client_core/clock.h"
#include "client_core/constants.h"
#include "client_core/header.h"
#include "client_core/release.h"
#include "client_core/transport.h"
#include "client_core/u128.h"

namespace tb {

// A fresh client id from the operating system's CSPRNG (getrandom(2) via std::random_device);
// never 0 (PROTOCOL.md §8.1: a 0 id crashes a replica).
u128 RandomClientId();

struct SessionOptions {
  u128 cluster = 0;
  // Announced in every request and ping; constant for the whole session (§7.2, §7.4).
  uint32_t release = kReleaseClient;
  // 0: a fresh RandomClientId() (the only correct choice outside tests). Tests inject an id to
  // reproduce known-answer bytes.
  u128 client_id = 0;
  // Seed of the PRNG used for retry jitter and the choice of hedge replica; 0: random.
  uint64_t seed = 0;
};

// What the cluster answered to one request.
struct SessionReply {
  uint64_t op = 0;         // Log position the request committed at.
  uint64_t timestamp = 0;  // The request's cluster timestamp.
  uint32_t view = 0;       // View the reply carried.
  uint32_t request = 0;    // Request number.
  uint8_t operation = 0;
  std::vector<uint8_t> body;
};

// Runs exactly once per accepted request, on the session's thread: with the reply, or with an
// error carrying an Outcome payload (client_core/outcome.h): an eviction status (see below) or
// kCancelled from Close().
using RequestCallback = absl::AnyInvocable<void(absl::StatusOr<SessionReply>) &&>;

// Notifications for metrics and for the owner (the pool). All methods have empty defaults and run
// on the session's thread. None may destroy the Session; post that to the event loop instead.
class SessionObserver {
 public:
  virtual ~SessionObserver() = default;
  // The register reply arrived: the session is ready for SendRequest().
  virtual void OnRegistered(uint64_t session, uint32_t batch_size_limit) {}
  // The cluster evicted this session; it is unusable for good. Replace it with a new Session
  // (new client id), except for release reasons, where a new session would fail the same way.
  virtual void OnEvicted(EvictionReason reason) {}
  // The session learned a higher view from a reply or a pong.
  virtual void OnViewChanged(uint32_t view) {}
  // The request in flight (or the register) timed out and was re-sent; `attempts` >= 1.
  virtual void OnResend(uint32_t attempts) {}
  // A message from the network was dropped (invalid per-command header, unexpected command,
  // reply that matches nothing, inconsistent reply). `reason` is a short constant text.
  virtual void OnMessageDropped(absl::string_view reason) {}
};

// Error status for an eviction: the message names the reason ("session evicted:
// invalid_request_body"), the code is kFailedPrecondition for client_release_too_low/high (a new
// session will not help), kInvalidArgument for invalid_request_* (the request itself was bad) and
// kUnavailable otherwise (a new session will work). GetEvictionReason() recovers the reason.
absl::Status EvictionStatus(EvictionReason reason);
std::optional<EvictionReason> GetEvictionReason(const absl::Status& status);

class Session final : public TransportReceiver {
 public:
  enum class State : uint8_t {
    kIdle,         // Constructed; Register() not called yet.
    kRegistering,  // Register request in flight.
    kReady,        // Registered; SendRequest() allowed when nothing is in flight.
    kEvicted,      // Evicted by the cluster; unusable for good.
    kClosed,       // Close() was called; unusable for good.
  };

  // `transport`, `clock` and `observer` must outlive the Session; `observer` may be null.
  // transport->replica_count() must be in 1..kReplicaCountMax (asserted).
  Session(SessionOptions options, MessageTransport* transport, Clock* clock,
          SessionObserver* observer);
  ~Session() override;
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Sends the register request (size 512, zero body) to the primary and a hedge, then a ping to
  // every replica. Precondition: state() == kIdle (asserted).
  void Register();

  // Sends one request. Refuses, without calling `on_done`:
  //   kFailedPrecondition: not registered, evicted, closed, or a request already in flight;
  //   kInvalidArgument: operation not forwardable (IsForwardableOperation: 137, 140..147 only),
  //     body larger than batch_size_limit(), or body failing ValidateRequestBody — a session
  //     never puts on the wire a message that could crash a replica or get itself evicted.
  // On OK the request is in flight and `on_done` will run exactly once.
  // `body` is read only during the call: it is framed straight into the wire message, which the
  // session keeps for its own resends, so the caller may reuse or free it once this returns.
  absl::Status SendRequest(uint8_t operation, std::span<const uint8_t> body,
                           RequestCallback on_done);

  // Call every 10 ms (kTickMs): drives retries and the 30 s pings.
  void Tick();

  // Ends the session: fails the request in flight (if any) with `reason` (must not be OK),
  // Outcome kUnknown, and refuses everything afterwards. Idempotent after the first call.
  void Close(absl::Status reason);

  // TransportReceiver.
  void OnConnected(uint32_t replica) override;
  void OnMessage(uint32_t replica, const Header& header, std::span<const uint8_t> body) override;

  State state() const { return state_; }
  bool ready() const { return state_ == State::kReady; }
  // True when a request (or the register) is in flight.
  bool busy() const { return in_flight_.has_value(); }
  // Ready and nothing in flight: SendRequest() would accept a valid request.
  bool idle() const { return ready() && !busy(); }
  u128 client_id() const { return client_id_; }
  uint32_t release() const { return options_.release; }
  // Valid once ready(): the session number and the cluster's request body limit.
  uint64_t session_number() const { return session_number_; }
  uint32_t batch_size_limit() const { return batch_size_limit_; }
  uint32_t view() const { return view_; }
  uint32_t replica_count() const { return replica_count_; }
  // Number of the last request sent (0 = only the register).
  uint32_t request_number() const { return request_number_; }
  // The RTT used for retries, in ticks (30 before any pong).
  uint32_t rtt_ticks() const { return rtt_ticks_; }
  // Set once state() == kEvicted.
  std::optional<EvictionReason> eviction_reason() const { return eviction_reason_; }

 private:
  struct InFlight {
    MessageBytes message;
    u128 checksum = 0;
    uint32_t request = 0;
    uint8_t operation = 0;
    uint64_t sent_at_ns = 0;     // When first sent, for previous_request_latency.
    uint32_t attempts = 0;       // Retries so far (wraps like the official u8 counter's use).
    uint64_t timeout_ticks = 0;  // Ticks left until the next retry.
    RequestCallback on_done;     // Empty for the register.
  };

  MessageBytes BuildRequest(uint8_t operation, std::span<const uint8_t> body);
  void StartInFlight(MessageBytes message, uint8_t operation, RequestCallback on_done);
  void Transmit();
  void SendPing(uint32_t replica);
  void SendPingToAll();
  void OnRetryTimeout();
  uint64_t RetryTimeoutTicks();
  void OnReply(const Header& header, std::span<const uint8_t> body);
  void OnRegisterReply(const ReplyHeader& reply, std::span<const uint8_t> body);
  void OnPong(uint32_t replica, const Header& header);
  void OnEviction(const Header& header);
  void ObserveView(uint32_t view);
  void Drop(absl::string_view reason);
  void AssertOwnerThread();
  uint32_t Primary() const { return view_ % replica_count_; }

  const SessionOptions options_;
  MessageTransport* const transport_;
  Clock* const clock_;
  SessionObserver* const observer_;
  const uint32_t replica_count_;
  const u128 client_id_;
  std::mt19937_64 random_;

  State state_ = State::kIdle;
  std::optional<EvictionReason> eviction_reason_;
  uint64_t session_number_ = 0;
  uint32_t batch_size_limit_ = 0;
  uint32_t view_ = 0;
  uint32_t request_number_ = 0;
  u128 parent_ = 0;                         // Context of the last reply.
  uint32_t previous_request_latency_us_ = 0;
  std::optional<InFlight> in_flight_;

  uint64_t ticks_ = 0;
  uint64_t ping_timeout_ticks_ = 0;
  std::vector<uint64_t> rtt_ns_;            // Per replica; 0 = no sample yet.
  uint32_t rtt_ticks_;
  std::thread::id owner_thread_;  // Bound by the first call; see AssertOwnerThread().
};

const char* SessionStateName(Session::State state);

}  // namespace tb
