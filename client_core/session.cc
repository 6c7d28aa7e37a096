#include "client_core/session.h"

#include <sys/random.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <limits>
#include <string>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "client_core/assert.h"
#include "client_core/checksum.h"
#include "client_core/operation.h"
#include "client_core/outcome.h"
#include "client_core/request_validation.h"

namespace tb {
namespace {

constexpr absl::string_view kEvictionReasonPayloadUrl = "type.tbproxy.dev/eviction_reason";
constexpr uint32_t kRttTicksMin = 1;
constexpr uint32_t kRttTicksMax = 6000;
constexpr uint64_t kTickNs = uint64_t{kTickMs} * 1000 * 1000;
constexpr uint32_t kRetryBackoffExponentMax = 10;  // 2^10 > kRetryJitterTicksMax.
static_assert((uint64_t{1} << kRetryBackoffExponentMax) > kRetryJitterTicksMax);

uint64_t RandomSeed() {
  uint64_t seed = 0;
  while (seed == 0) {
    const ssize_t n = getrandom(&seed, sizeof(seed), 0);
    if (n != static_cast<ssize_t>(sizeof(seed))) {
      TB_ASSERT(n < 0 && errno == EINTR, "getrandom(2) failed");
      seed = 0;
    }
  }
  return seed;
}

bool EvictionCertainlyNotApplied(EvictionReason reason, uint32_t attempts) {
  if (reason == EvictionReason::kNoSession) {
    // Sent once and refused for lack of a session: the cluster did not execute it. After a
    // retry the first transmission may have committed before the session was removed from
    // the table (least recently committed first), so the outcome is unknown.
    return attempts == 0;
  }
  // Every other reason is decided from the request's own bytes (operation, body, size,
  // release, session number), identically for every transmission: none was executed.
  return true;
}

}  // namespace

u128 RandomClientId() {
  u128 id = 0;
  while (id == 0) {
    uint8_t bytes[sizeof(u128)];
    size_t filled = 0;
    while (filled < sizeof(bytes)) {
      const ssize_t n = getrandom(bytes + filled, sizeof(bytes) - filled, 0);
      if (n < 0) {
        TB_ASSERT(errno == EINTR, "getrandom(2) failed");
        continue;
      }
      filled += static_cast<size_t>(n);
    }
    std::memcpy(&id, bytes, sizeof(id));
  }
  return id;
}

absl::Status EvictionStatus(EvictionReason reason) {
  const std::string message = absl::StrCat("session evicted: ", EvictionReasonName(reason));
  absl::Status status;
  switch (reason) {
    case EvictionReason::kClientReleaseTooLow:
    case EvictionReason::kClientReleaseTooHigh:
      status = absl::FailedPreconditionError(message);
      break;
    case EvictionReason::kInvalidRequestOperation:
    case EvictionReason::kInvalidRequestBody:
    case EvictionReason::kInvalidRequestBodySize:
      status = absl::InvalidArgumentError(message);
      break;
    default:
      status = absl::UnavailableError(message);
      break;
  }
  status.SetPayload(kEvictionReasonPayloadUrl,
                    absl::Cord(std::to_string(static_cast<uint32_t>(reason))));
  return status;
}

std::optional<EvictionReason> GetEvictionReason(const absl::Status& status) {
  auto payload = status.GetPayload(kEvictionReasonPayloadUrl);
  if (!payload.has_value()) return std::nullopt;
  for (uint8_t value = 1; value <= kEvictionReasonMax; value++) {
    if (*payload == std::to_string(value)) return static_cast<EvictionReason>(value);
  }
  return std::nullopt;
}

const char* SessionStateName(Session::State state) {
  switch (state) {
    case Session::State::kIdle: return "idle";
    case Session::State::kRegistering: return "registering";
    case Session::State::kReady: return "ready";
    case Session::State::kEvicted: return "evicted";
    case Session::State::kClosed: return "closed";
  }
  return "unknown";
}

Session::Session(SessionOptions options, MessageTransport* transport, Clock* clock,
                 SessionObserver* observer)
    : options_(options),
      transport_(transport),
      clock_(clock),
      observer_(observer),
      replica_count_(transport->replica_count()),
      client_id_(options.client_id != 0 ? options.client_id : RandomClientId()),
      random_(options.seed != 0 ? options.seed : RandomSeed()),
      rtt_ns_(replica_count_, 0),
      rtt_ticks_(kRttTicksDefault) {
  TB_ASSERT(clock_ != nullptr);
  TB_ASSERT(replica_count_ >= 1 && replica_count_ <= kReplicaCountMax);
  TB_ASSERT(options_.release != 0, "a zero release is invalid on the wire");
  TB_ASSERT(client_id_ != 0, "client id 0 crashes a replica");
}

Session::~Session() {
  Close(absl::CancelledError("session destroyed with a request in flight"));
}

void Session::Register() {
  AssertOwnerThread();
  TB_ASSERT(state_ == State::kIdle, "Register() is called once, first");
  TB_ASSERT(!in_flight_.has_value());
  TB_ASSERT(request_number_ == 0 && parent_ == 0 && session_number_ == 0);
  state_ = State::kRegistering;
  // RegisterRequest: batch_size_limit and reserved MUST be zero (non-zero crashes a primary).
  const std::vector<uint8_t> body(kRegisterRequestBodySize, 0);
  StartInFlight(BuildRequest(static_cast<uint8_t>(Operation::kRegister), body),
                static_cast<uint8_t>(Operation::kRegister), nullptr);
  Transmit();
  SendPingToAll();
  ping_timeout_ticks_ = kPingIntervalTicks;
}

absl::Status Session::SendRequest(uint8_t operation, std::span<const uint8_t> body,
                                  RequestCallback on_done) {
  AssertOwnerThread();
  TB_ASSERT(on_done != nullptr);
  if (state_ != State::kReady) {
    return absl::FailedPreconditionError(
        absl::StrCat("session is not ready: ", SessionStateName(state_)));
  }
  if (in_flight_.has_value()) {
    return absl::FailedPreconditionError("a request is already in flight on this session");
  }
  if (!IsForwardableOperation(operation)) {
    return absl::InvalidArgumentError(
        absl::StrCat("operation ", operation, " is not forwarded to a cluster"));
  }
  const OperationInfo* info = FindOperation(operation);
  TB_ASSERT(info != nullptr, "forwardable operations are in the table");
  if (body.size() > batch_size_limit_) {
    return absl::InvalidArgumentError(absl::StrCat("request body of ", body.size(),
                                                   " bytes exceeds the batch_size_limit ",
                                                   batch_size_limit_));
  }
  absl::Status valid = ValidateRequestBody(*info, body, batch_size_limit_);
  if (!valid.ok()) return valid;
  if (request_number_ == std::numeric_limits<uint32_t>::max()) {
    return absl::FailedPreconditionError("request numbers of this session are exhausted");
  }
  request_number_++;
  StartInFlight(BuildRequest(operation, body), operation, std::move(on_done));
  Transmit();
  return absl::OkStatus();
}

void Session::Tick() {
  AssertOwnerThread();
  if (state_ != State::kRegistering && state_ != State::kReady) return;
  ticks_++;
  TB_ASSERT(ping_timeout_ticks_ > 0);
  ping_timeout_ticks_--;
  if (ping_timeout_ticks_ == 0) {
    SendPingToAll();
    ping_timeout_ticks_ = kPingIntervalTicks;
  }
  if (in_flight_.has_value()) {
    TB_ASSERT(in_flight_->timeout_ticks > 0);
    in_flight_->timeout_ticks--;
    if (in_flight_->timeout_ticks == 0) OnRetryTimeout();
  }
}

void Session::Close(absl::Status reason) {
  TB_ASSERT(!reason.ok());
  if (state_ == State::kClosed || state_ == State::kEvicted) return;
  state_ = State::kClosed;
  if (!in_flight_.has_value()) return;
  RequestCallback on_done = std::move(in_flight_->on_done);
  in_flight_.reset();
  if (on_done != nullptr) std::move(on_done)(WithOutcome(std::move(reason), Outcome::kUnknown));
}

void Session::OnConnected(uint32_t replica) {
  AssertOwnerThread();
  TB_ASSERT(replica < replica_count_);
  // A ping binds the new connection to our client id, so the replica can reply over it.
  if (state_ == State::kRegistering || state_ == State::kReady) SendPing(replica);
}

void Session::OnMessage(uint32_t replica, const Header& header, std::span<const uint8_t> body) {
  AssertOwnerThread();
  TB_ASSERT(replica < replica_count_);
  TB_ASSERT(body.size() + kHeaderSize == header.frame.size);
  if (state_ != State::kRegistering && state_ != State::kReady) return;
  if (header.frame.cluster != options_.cluster) return Drop("message for another cluster");
  switch (header.frame.command) {
    case Command::kReply: return OnReply(header, body);
    case Command::kPongClient: return OnPong(replica, header);
    case Command::kEviction: return OnEviction(header);
    default: return Drop("unexpected command");
  }
}

MessageBytes Session::BuildRequest(uint8_t operation, std::span<const uint8_t> body) {
  TB_ASSERT(body.size() <= kMessageBodySizeMax);
  RequestHeader request{};
  request.frame.cluster = options_.cluster;
  request.frame.view = view_;
  request.frame.release = options_.release;
  request.frame.command = Command::kRequest;
  request.parent = parent_;
  request.client = client_id_;
  request.session = session_number_;
  request.request = request_number_;
  request.operation = operation;
  request.previous_request_latency = previous_request_latency_us_;
  Header header = AsHeader(request);
  SetChecksums(header, body);
  TB_ASSERT(header.frame.size == kHeaderSize + body.size());
  TB_ASSERT(ValidateRequest(HeaderAs<RequestHeader>(header)).ok(), "we build valid requests");

  std::vector<uint8_t> bytes(kHeaderSize + body.size());
  std::memcpy(bytes.data(), &header, kHeaderSize);
  if (!body.empty()) std::memcpy(bytes.data() + kHeaderSize, body.data(), body.size());
  return MakeMessageBytes(std::move(bytes));
}

void Session::StartInFlight(MessageBytes message, uint8_t operation, RequestCallback on_done) {
  TB_ASSERT(!in_flight_.has_value());
  Header header;
  std::memcpy(&header, message->data(), kHeaderSize);
  InFlight in_flight;
  in_flight.checksum = header.frame.checksum;
  in_flight.message = std::move(message);
  in_flight.request = request_number_;
  in_flight.operation = operation;
  in_flight.sent_at_ns = clock_->NowNs();
  in_flight.attempts = 0;
  in_flight.timeout_ticks = kRequestTimeoutTicksInitial;
  in_flight.on_done = std::move(on_done);
  in_flight_ = std::move(in_flight);
}

void Session::Transmit() {
  TB_ASSERT(in_flight_.has_value());
  const uint32_t primary = Primary();
  transport_->Send(primary, in_flight_->message);
  if (replica_count_ > 1) {
    // Hedge to one random backup: it forwards to the primary or answers a duplicate itself.
    std::uniform_int_distribution<uint32_t> offset(1, replica_count_ - 1);
    transport_->Send((primary + offset(random_)) % replica_count_, in_flight_->message);
  }
}

void Session::SendPing(uint32_t replica) {
  PingClientHeader ping{};
  ping.frame.cluster = options_.cluster;
  ping.frame.release = options_.release;
  ping.frame.command = Command::kPingClient;
  ping.client = client_id_;
  ping.ping_timestamp_monotonic = clock_->NowNs();
  ping.session = session_number_;
  Header header = AsHeader(ping);
  SetChecksums(header, {});
  std::vector<uint8_t> bytes(kHeaderSize);
  std::memcpy(bytes.data(), &header, kHeaderSize);
  transport_->Send(replica, MakeMessageBytes(std::move(bytes)));
}

void Session::SendPingToAll() {
  for (uint32_t replica = 0; replica < replica_count_; replica++) SendPing(replica);
}

void Session::OnRetryTimeout() {
  TB_ASSERT(in_flight_.has_value());
  in_flight_->attempts++;
  in_flight_->timeout_ticks = RetryTimeoutTicks();
  TB_ASSERT(in_flight_->timeout_ticks > 0);
  Transmit();
  if (observer_ != nullptr) observer_->OnResend(in_flight_->attempts);
}

uint64_t Session::RetryTimeoutTicks() {
  TB_ASSERT(in_flight_.has_value() && in_flight_->attempts > 0);
  const uint32_t exponent = std::min(in_flight_->attempts, kRetryBackoffExponentMax);
  const uint64_t jitter_max = std::min<uint64_t>(kRetryJitterTicksMax, uint64_t{1} << exponent);
  std::uniform_int_distribution<uint64_t> jitter(0, jitter_max);
  return uint64_t{kRttMultiple} * rtt_ticks_ + 1 + jitter(random_);
}

void Session::OnReply(const Header& header, std::span<const uint8_t> body) {
  const ReplyHeader reply = HeaderAs<ReplyHeader>(header);
  if (!ValidateReply(reply).ok()) return Drop("invalid reply header");
  if (reply.client != client_id_) return Drop("reply for another client");
  ObserveView(reply.frame.view);
  // Duplicates (primary and backup both reply; retries re-send) and replies to requests we
  // have moved past are normal and ignored silently.
  if (!in_flight_.has_value()) return;
  if (reply.request < in_flight_->request) return;
  if (reply.request > in_flight_->request) return Drop("reply with a request number ahead");
  if (reply.request_checksum != in_flight_->checksum || reply.operation != in_flight_->operation) {
    return Drop("reply does not match the request in flight");
  }
  if (reply.frame.release != options_.release) return Drop("reply with another release");

  const uint64_t now = clock_->NowNs();
  const uint64_t latency_ns = now >= in_flight_->sent_at_ns ? now - in_flight_->sent_at_ns : 0;
  previous_request_latency_us_ = static_cast<uint32_t>(
      std::min<uint64_t>(latency_ns / 1000, std::numeric_limits<uint32_t>::max()));

  if (reply.operation == static_cast<uint8_t>(Operation::kRegister)) {
    return OnRegisterReply(reply, body);
  }
  parent_ = reply.context;
  SessionReply result;
  result.op = reply.op;
  result.timestamp = reply.timestamp;
  result.view = reply.frame.view;
  result.request = reply.request;
  result.operation = reply.operation;
  result.body.assign(body.begin(), body.end());
  RequestCallback on_done = std::move(in_flight_->on_done);
  in_flight_.reset();
  TB_ASSERT(on_done != nullptr);
  std::move(on_done)(std::move(result));
}

void Session::OnRegisterReply(const ReplyHeader& reply, std::span<const uint8_t> body) {
  TB_ASSERT(state_ == State::kRegistering);
  TB_ASSERT(body.size() == sizeof(RegisterResult), "ValidateReply checks the register size");
  RegisterResult result;
  std::memcpy(&result, body.data(), sizeof(result));
  if (result.batch_size_limit == 0) {
    // Unusable; the register stays in flight and is retried rather than trusting this reply.
    return Drop("register reply with batch_size_limit 0");
  }
  TB_ASSERT(reply.commit > 0, "ValidateReply checks commit != 0");
  parent_ = reply.context;
  session_number_ = reply.commit;
  // A limit above the protocol's maximum is clamped: we never send more than 1 MiB anyway.
  batch_size_limit_ = std::min(result.batch_size_limit, kBatchSizeLimitMax);
  in_flight_.reset();
  state_ = State::kReady;
  if (observer_ != nullptr) observer_->OnRegistered(session_number_, batch_size_limit_);
}

void Session::OnPong(uint32_t replica, const Header& header) {
  const PongClientHeader pong = HeaderAs<PongClientHeader>(header);
  if (!ValidatePongClient(pong).ok()) return Drop("invalid pong header");
  ObserveView(pong.frame.view);
  const uint64_t now = clock_->NowNs();
  if (pong.ping_timestamp_monotonic > now) return;  // Not a time we sent; no RTT sample.
  // Keep 0 as "no sample": a same-nanosecond answer (only possible with a fake clock) counts 1.
  rtt_ns_[replica] = std::max<uint64_t>(now - pong.ping_timestamp_monotonic, 1);
  std::vector<uint64_t> samples;
  for (uint64_t sample : rtt_ns_) {
    if (sample != 0) samples.push_back(sample);
  }
  TB_ASSERT(!samples.empty());
  std::nth_element(samples.begin(), samples.begin() + samples.size() / 2, samples.end());
  const uint64_t median_ns = samples[samples.size() / 2];
  const uint64_t ticks = (median_ns + kTickNs - 1) / kTickNs;
  rtt_ticks_ = static_cast<uint32_t>(std::clamp<uint64_t>(ticks, kRttTicksMin, kRttTicksMax));
}

void Session::OnEviction(const Header& header) {
  const EvictionHeader eviction = HeaderAs<EvictionHeader>(header);
  if (!ValidateEviction(eviction).ok()) return Drop("invalid eviction header");
  if (eviction.client != client_id_) return Drop("eviction for another client");
  if (eviction.frame.view < view_) return Drop("eviction from an older view");
  state_ = State::kEvicted;
  eviction_reason_ = eviction.reason;
  if (in_flight_.has_value()) {
    const Outcome outcome = EvictionCertainlyNotApplied(eviction.reason, in_flight_->attempts)
                                ? Outcome::kNotApplied
                                : Outcome::kUnknown;
    RequestCallback on_done = std::move(in_flight_->on_done);
    in_flight_.reset();
    if (on_done != nullptr) {
      std::move(on_done)(WithOutcome(EvictionStatus(eviction.reason), outcome));
    }
  }
  if (observer_ != nullptr) observer_->OnEvicted(eviction.reason);
}

void Session::ObserveView(uint32_t view) {
  if (view <= view_) return;
  view_ = view;
  if (observer_ != nullptr) observer_->OnViewChanged(view_);
}

void Session::AssertOwnerThread() {
  // The first call binds the session to its thread (the I/O thread), so construction may happen
  // elsewhere; every later call must come from that thread.
  const std::thread::id current = std::this_thread::get_id();
  if (owner_thread_ == std::thread::id()) owner_thread_ = current;
  TB_ASSERT(owner_thread_ == current, "a Session is used on one thread only");
}

void Session::Drop(absl::string_view reason) {
  if (observer_ != nullptr) observer_->OnMessageDropped(reason);
}

}  // namespace tb
