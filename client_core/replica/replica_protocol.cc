#include "client_core/replica/replica_protocol.h"

#include <algorithm>
#include <cstring>
#include <iterator>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client_core/assert.h"
#include "client_core/operation.h"
#include "client_core/request_validation.h"
#include "client_core/replica/message_framer.h"

namespace tb::replica {

// Where a message came from. A request a backup forwarded to the primary keeps the backup's
// arrival so that the reply can also be delivered through that backup (§9.5).
struct ReplicaProtocol::Arrival {
  ConnectionId connection = 0;
  uint8_t replica = 0;
  bool forwarded = false;  // Arrived at a backup and is now handled by the primary.
};

namespace {

Decision Dropped(std::string note) {
  Decision decision;
  decision.verdict = Verdict::kDrop;
  decision.note = std::move(note);
  return decision;
}

// Epoch, protocol, the paddings and reserved_frame must be zero (§3.2).
bool FrameFieldsAreZero(const Frame& frame) {
  return frame.checksum_padding == 0 && frame.checksum_body_padding == 0 &&
         frame.nonce_reserved == 0 && frame.epoch == 0 && frame.protocol == 0 &&
         std::all_of(std::begin(frame.reserved_frame), std::end(frame.reserved_frame),
                     [](uint8_t byte) { return byte == 0; });
}

bool RegisterBodyIsZero(std::span<const uint8_t> body) {
  return std::all_of(body.begin(), body.end(), [](uint8_t byte) { return byte == 0; });
}

}  // namespace

absl::Status ValidateReplicaProtocolOptions(const ReplicaProtocolOptions& options) {
  if (options.replica_count < 1 || options.replica_count > kReplicaCountMax) {
    return absl::InvalidArgumentError(absl::StrCat("replica_count ", options.replica_count,
                                                   " is outside 1..", kReplicaCountMax));
  }
  if (options.clients_max < 1 || options.clients_max > kClientsMaxLimit) {
    return absl::InvalidArgumentError(
        absl::StrCat("clients_max ", options.clients_max, " is outside 1..", kClientsMaxLimit));
  }
  if (options.batch_size_limit < kBatchSizeLimitMin ||
      options.batch_size_limit > kBatchSizeLimitMax) {
    return absl::InvalidArgumentError(absl::StrCat("batch_size_limit ", options.batch_size_limit,
                                                   " is outside ", kBatchSizeLimitMin, "..",
                                                   kBatchSizeLimitMax));
  }
  if (options.release == 0 || options.release_client_min == 0 ||
      options.release_client_min > options.release) {
    return absl::InvalidArgumentError(
        "release and release_client_min must be non-zero with release_client_min <= release");
  }
  return absl::OkStatus();
}

const char* VerdictName(Verdict verdict) {
  switch (verdict) {
    case Verdict::kDrop: return "drop";
    case Verdict::kClose: return "close";
    case Verdict::kPong: return "pong";
    case Verdict::kReply: return "reply";
    case Verdict::kDuplicate: return "duplicate";
    case Verdict::kEviction: return "eviction";
    case Verdict::kPending: return "pending";
  }
  return "unknown";
}

ReplicaProtocol::ReplicaProtocol(const ReplicaProtocolOptions& options, Executor* executor)
    : options_(options),
      executor_(executor),
      sessions_(options.clients_max),
      connections_(options.replica_count) {
  TB_ASSERT(ValidateReplicaProtocolOptions(options).ok());
  TB_ASSERT(executor != nullptr);
}

ReplicaProtocol::ReplicaProtocol(const ReplicaProtocolOptions& options, AsyncExecutor* executor)
    : options_(options),
      async_executor_(executor),
      sessions_(options.clients_max),
      connections_(options.replica_count) {
  TB_ASSERT(ValidateReplicaProtocolOptions(options).ok());
  TB_ASSERT(executor != nullptr);
}

void ReplicaProtocol::OnConnectionOpened(ConnectionId connection, uint8_t replica) {
  connections_.Open(connection, replica);
}

void ReplicaProtocol::OnConnectionClosed(ConnectionId connection) {
  connections_.Close(connection);
}

void ReplicaProtocol::SetBatchSizeLimit(uint32_t batch_size_limit) {
  TB_ASSERT(batch_size_limit >= kBatchSizeLimitMin && batch_size_limit <= kBatchSizeLimitMax);
  options_.batch_size_limit = batch_size_limit;
}

void ReplicaProtocol::SetView(uint32_t view) {
  TB_ASSERT(view >= view_, "views never go back");
  view_ = view;
}

Sender ReplicaProtocol::SenderFor(uint8_t replica) const {
  return Sender{.cluster = options_.cluster,
                .view = view_,
                .release = options_.release,
                .replica = replica};
}

void ReplicaProtocol::AddSend(Decision& decision, std::optional<ConnectionId> connection,
                              const MessageBytes& message) const {
  if (!connection.has_value()) return;
  for (const Send& send : decision.sends) {
    if (send.connection == *connection) return;
  }
  decision.sends.push_back(Send{.connection = *connection, .message = message});
}

Decision ReplicaProtocol::OnMessage(ConnectionId connection, std::span<const uint8_t> message,
                                    uint64_t now_ns) {
  absl::StatusOr<Header> decoded = CheckFrame(message, options_.cluster);
  return OnDecoded(connection, message, decoded.ok() ? *decoded : Header{}, decoded.status(),
                   now_ns);
}

Decision ReplicaProtocol::OnFramedMessage(ConnectionId connection,
                                          std::span<const uint8_t> message, uint64_t now_ns) {
  TB_ASSERT(message.size() >= kHeaderSize, "a framed message holds a whole header");
  Header header;
  std::memcpy(&header, message.data(), kHeaderSize);
  return OnDecoded(connection, message, header, CheckFrameFields(header, options_.cluster),
                   now_ns);
}

Decision ReplicaProtocol::OnDecoded(ConnectionId connection, std::span<const uint8_t> message,
                                    const Header& header, absl::Status frame, uint64_t now_ns) {
  Decision close;
  close.verdict = Verdict::kClose;
  close.closes.push_back(connection);
  if (!connections_.Contains(connection)) {
    close.note = "unknown or replaced connection";
    return close;
  }
  // Frame rules (§2.1): any failure closes the connection without a message.
  if (frame.ok() && header.frame.size != message.size()) {
    frame = absl::InvalidArgumentError(
        absl::StrCat("size ", header.frame.size, " but ", message.size(), " bytes framed"));
  }
  if (frame.ok()) frame = ValidateBody(header, message.subspan(kHeaderSize));
  if (!frame.ok()) {
    connections_.Close(connection);
    close.note = std::string(frame.message());
    return close;
  }
  // The remaining frame fields (epoch, protocol, paddings, reserved bytes): invalid headers are
  // dropped with the connection kept (§3.2, §9.1 step 0).
  if (!FrameFieldsAreZero(header.frame)) return Dropped("non-zero reserved frame field");
  const Arrival arrival{.connection = connection, .replica = connections_.ReplicaOf(connection)};
  switch (header.frame.command) {
    case Command::kPingClient:
      return OnPing(arrival, header);
    case Command::kRequest:
      return OnRequest(arrival, header, message.subspan(kHeaderSize), now_ns);
    default:
      // A real replica ignores replica-to-replica commands, pongs and replies sent to it, and
      // the deprecated numbers on a client connection. CheckFrame already refused command 0
      // and unknown numbers (a real replica crashes on those).
      return Dropped(absl::StrCat("command ", CommandName(header.frame.command),
                                  " is not for a replica's client port"));
  }
}

Decision ReplicaProtocol::OnPing(const Arrival& arrival, const Header& header) {
  const auto ping = HeaderAs<PingClientHeader>(header);
  if (ping.client == 0) return Dropped("ping from client 0");
  // A ping binds its connection even when it then fails validation (§9.2).
  const BindResult bind = connections_.Bind(arrival.connection, ping.client, BindKind::kPing);
  Decision decision;
  if (bind.close_arrival) {
    decision.verdict = Verdict::kClose;
    decision.note = "a second client id on one connection";
    decision.closes.push_back(arrival.connection);
    return decision;
  }
  if (bind.close_replaced) decision.closes.push_back(*bind.close_replaced);
  auto drop = [&decision](std::string note) {
    decision.verdict = Verdict::kDrop;
    decision.note = std::move(note);
    return std::move(decision);
  };
  if (absl::Status valid = ValidatePingClient(ping); !valid.ok()) {
    return drop(absl::StrCat("invalid ping: ", valid.message()));
  }
  const bool primary = arrival.replica == this->primary();
  std::optional<EvictionReason> reason;
  // Step 2: only the primary evicts a ping whose session it has committed past but no longer
  // knows; a backup answers it with a pong.
  if (primary && sessions_.Find(ping.client) == nullptr && ping.session != 0 &&
      ping.session <= op_) {
    reason = EvictionReason::kNoSession;
  } else if (ping.frame.release < options_.release_client_min) {
    if (!primary) return drop("ping release too low (backup)");
    reason = EvictionReason::kClientReleaseTooLow;
  } else if (ping.frame.release > options_.release) {
    if (!primary) return drop("ping release too high (backup)");
    reason = EvictionReason::kClientReleaseTooHigh;
  }
  if (reason.has_value()) {
    decision.verdict = Verdict::kEviction;
    decision.eviction_reason = *reason;
    AddSend(decision, arrival.connection,
            BuildEviction(SenderFor(arrival.replica), ping.client, *reason));
    return decision;
  }
  decision.verdict = Verdict::kPong;
  AddSend(decision, arrival.connection,
          BuildPong(SenderFor(arrival.replica), ping.ping_timestamp_monotonic));
  return decision;
}

Decision ReplicaProtocol::OnRequest(const Arrival& arrival, const Header& header,
                                    std::span<const uint8_t> body, uint64_t now_ns) {
  const auto request = HeaderAs<RequestHeader>(header);
  // Step 0 (and defences a real replica lacks: client 0 crashes it).
  if (request.client == 0) return Dropped("request from client 0");
  const BindResult bind =
      connections_.Bind(arrival.connection, request.client, BindKind::kRequest);
  if (bind.close_arrival) {
    Decision decision;
    decision.verdict = Verdict::kClose;
    decision.note = "a second client id on one connection";
    decision.closes.push_back(arrival.connection);
    return decision;
  }
  TB_ASSERT(!bind.close_replaced.has_value(), "only pings replace connections");
  if (absl::Status valid = ValidateRequest(request); !valid.ok()) {
    return Dropped(absl::StrCat("invalid request header: ", valid.message()));
  }
  if (request.operation < kStateMachineOperationMin &&
      request.operation != static_cast<uint8_t>(Operation::kRegister)) {
    return Dropped(absl::StrCat("operation ", request.operation, " is reserved for replicas"));
  }
  // Step 2.
  if (request.frame.view > view_) {
    return Dropped(absl::StrCat("request view ", request.frame.view, " is ahead of ", view_));
  }
  if (arrival.replica != primary()) return OnRequestAtBackup(arrival, request, body, now_ns);
  return OnRequestAtPrimary(arrival, request, body, now_ns);
}

// §9.1 step 3: backups never evict and never execute.
Decision ReplicaProtocol::OnRequestAtBackup(const Arrival& arrival, const RequestHeader& request,
                                            std::span<const uint8_t> body, uint64_t now_ns) {
  if (request.frame.release < options_.release_client_min ||
      request.frame.release > options_.release) {
    return Dropped("request release out of range (backup)");
  }
  const bool is_register = request.operation == static_cast<uint8_t>(Operation::kRegister);
  Arrival forwarded = arrival;
  forwarded.forwarded = true;
  Session* session = sessions_.Find(request.client);
  if (session == nullptr) {
    if (is_register) return OnRequestAtPrimary(forwarded, request, body, now_ns);
    return Dropped("unknown client at a backup");
  }
  if (request.request > session->request) {
    return OnRequestAtPrimary(forwarded, request, body, now_ns);
  }
  if (request.request == session->request && request.frame.checksum == session->request_checksum) {
    return Duplicate(arrival, *session);
  }
  return Dropped("stale or colliding request at a backup");
}

Decision ReplicaProtocol::OnRequestAtPrimary(const Arrival& arrival, const RequestHeader& request,
                                             std::span<const uint8_t> body, uint64_t now_ns) {
  const u128 client = request.client;
  // Steps 4..9, in this order: the body is judged before the session.
  if (request.frame.release < options_.release_client_min) {
    return Evict(arrival, client, EvictionReason::kClientReleaseTooLow);
  }
  if (request.frame.release > options_.release) {
    return Evict(arrival, client, EvictionReason::kClientReleaseTooHigh);
  }
  if (request.frame.size > kHeaderSize + options_.batch_size_limit) {
    return Evict(arrival, client, EvictionReason::kInvalidRequestBodySize);
  }
  const bool is_register = request.operation == static_cast<uint8_t>(Operation::kRegister);
  if (!is_register) {
    const OperationInfo* info = FindOperation(request.operation);
    if (info == nullptr) return Evict(arrival, client, EvictionReason::kInvalidRequestOperation);
    if (!ValidateRequestBody(*info, body, options_.batch_size_limit).ok()) {
      return Evict(arrival, client, EvictionReason::kInvalidRequestBody);
    }
    if (info->operation == Operation::kStateMachinePulse) {
      return Dropped("operation 128 is never executed (it crashes a real replica)");
    }
  } else {
    if (request.frame.size != kHeaderSize + kRegisterRequestBodySize) {
      return Evict(arrival, client, EvictionReason::kInvalidRequestBodySize);
    }
    if (!RegisterBodyIsZero(body)) {
      return Dropped("register with a non-zero body (it crashes a real replica)");
    }
  }
  // Steps 11 and 12.
  if (Session* session = sessions_.Find(client); session != nullptr) {
    Decision decision;
    if (CheckSession(arrival, request, *session, decision)) return decision;
  } else if (!is_register) {
    return Evict(arrival, client, EvictionReason::kNoSession);
  }
  // Step 15.
  if (request.timestamp != 0) return Dropped("request timestamp is not zero");
  return Commit(arrival, request, body, now_ns);
}

bool ReplicaProtocol::CheckSession(const Arrival& arrival, const RequestHeader& request,
                                   Session& session, Decision& decision) {
  const bool is_register = request.operation == static_cast<uint8_t>(Operation::kRegister);
  if (!is_register && session.session > request.session) {
    decision = Evict(arrival, request.client, EvictionReason::kSessionTooLow);
    return true;
  }
  if (!is_register && session.session < request.session) {
    decision = Dropped("request session is ahead of the client's session");
    return true;
  }
  if (session.release != request.frame.release) {
    decision = Evict(arrival, request.client, EvictionReason::kSessionReleaseMismatch);
    return true;
  }
  if (session.pending_token != 0 && request.request >= session.pending_request) {
    // §9.1 step 13: the request (or, from a client that broke the one-in-flight rule, a later
    // one) is in progress; official clients retry with identical bytes.
    decision = Dropped(request.request == session.pending_request &&
                               request.frame.checksum == session.pending_checksum
                           ? "request in progress"
                           : "another request of the session is in progress");
    return true;
  }
  if (request.request < session.request) {
    decision = Dropped("stale request number");
    return true;
  }
  if (request.request == session.request) {
    if (request.frame.checksum == session.request_checksum) {
      decision = Duplicate(arrival, session);
    } else {
      decision = Dropped("request collision: same number, different checksum");
    }
    return true;
  }
  if (uint64_t{request.request} != uint64_t{session.request} + 1) {
    decision = Dropped("gap in request numbers");
    return true;
  }
  if (request.parent != session.reply_context) {
    decision = Dropped("parent does not match the last reply's context");
    return true;
  }
  return false;
}

Decision ReplicaProtocol::Commit(const Arrival& arrival, const RequestHeader& request,
                                 std::span<const uint8_t> body, uint64_t now_ns) {
  const bool is_register = request.operation == static_cast<uint8_t>(Operation::kRegister);
  const uint64_t op = op_ + 1;
  // The executor never sees a clock below the last timestamp + 1, so its timestamps stay above
  // those of registers, which it does not execute (§9.4).
  const uint64_t clock_ns = std::max(now_ns, timestamp_ + 1);
  uint64_t timestamp = clock_ns;
  if (!is_register && async_executor_ != nullptr) {
    Session* session = sessions_.Find(request.client);
    TB_ASSERT(session != nullptr, "CheckSession passed");
    return StartPending(arrival, request, body, *session);
  }
  std::vector<uint8_t> reply_body;
  if (is_register) {
    RegisterResult result{};
    result.batch_size_limit = options_.batch_size_limit;
    reply_body.resize(sizeof(result));
    std::memcpy(reply_body.data(), &result, sizeof(result));
  } else {
    ExecuteResult result = executor_->Execute(request.operation, body, clock_ns);
    timestamp = result.timestamp;
    reply_body = std::move(result.body);
  }
  TB_ASSERT(timestamp > timestamp_, "prepare timestamps strictly increase");
  if (is_register) {
    sessions_.Add(Session{.client = request.client, .session = op, .last_op = op});
  }
  return FinishCommit(arrival.forwarded, arrival.replica, request, timestamp, reply_body);
}

Decision ReplicaProtocol::StartPending(const Arrival& arrival, const RequestHeader& request,
                                       std::span<const uint8_t> body, Session& session) {
  const uint64_t token = ++next_token_;
  session.pending_token = token;
  session.pending_request = request.request;
  session.pending_checksum = request.frame.checksum;
  pending_.emplace(token, PendingCommit{.forwarded = arrival.forwarded,
                                        .replica = arrival.replica,
                                        .request = request});
  async_executor_->Start(token, request.client, request.operation, body);
  Decision decision;
  decision.verdict = Verdict::kPending;
  decision.note = "started";
  return decision;
}

Decision ReplicaProtocol::Complete(uint64_t token, ExecuteResult result) {
  auto it = pending_.find(token);
  if (it == pending_.end()) return Dropped("unknown token");
  const PendingCommit pending = it->second;
  pending_.erase(it);
  Session* session = sessions_.Find(pending.request.client);
  if (session == nullptr || session->pending_token != token) {
    return Dropped("the session was evicted while its request was in progress");
  }
  session->pending_token = 0;
  if (result.timestamp == 0 || result.body.size() > kMessageBodySizeMax) {
    // The executor broke its contract; the client must not see a wrong reply.
    sessions_.Remove(pending.request.client);
    return EvictPending(pending.request.client, EvictionReason::kNoSession);
  }
  return FinishCommit(pending.forwarded, pending.replica, pending.request, result.timestamp,
                      result.body);
}

Decision ReplicaProtocol::Complete(uint64_t token, CompletionFailure failure) {
  auto it = pending_.find(token);
  if (it == pending_.end()) return Dropped("unknown token");
  const u128 client = it->second.request.client;
  pending_.erase(it);
  Session* session = sessions_.Find(client);
  if (session == nullptr || session->pending_token != token) {
    return Dropped("the session was evicted while its request was in progress");
  }
  session->pending_token = 0;
  switch (failure) {
    case CompletionFailure::kDrop:
      return Dropped("not applied; the client retries");
    case CompletionFailure::kInvalidRequestBody:
      sessions_.Remove(client);
      return EvictPending(client, EvictionReason::kInvalidRequestBody);
    case CompletionFailure::kSessionLost:
      sessions_.Remove(client);
      return EvictPending(client, EvictionReason::kNoSession);
  }
  return Dropped("unknown failure");
}

Decision ReplicaProtocol::EvictPending(u128 client, EvictionReason reason) {
  Decision decision;
  decision.verdict = Verdict::kEviction;
  decision.eviction_reason = reason;
  decision.note = EvictionReasonName(reason);
  AddSend(decision, connections_.Find(primary(), client),
          BuildEviction(SenderFor(primary()), client, reason));
  return decision;
}

Decision ReplicaProtocol::FinishCommit(bool forwarded, uint8_t arrival_replica,
                                       const RequestHeader& request, uint64_t timestamp,
                                       std::span<const uint8_t> reply_body) {
  TB_ASSERT(timestamp > 0);
  TB_ASSERT(reply_body.size() <= kMessageBodySizeMax);
  const uint64_t op = op_ + 1;
  op_ = op;
  // Asynchronous results carry the cluster's timestamps, which need not arrive in order.
  timestamp_ = std::max(timestamp_, timestamp);
  const MessageBytes reply = BuildReply(SenderFor(primary()),
                                        ReplyFields{.request_checksum = request.frame.checksum,
                                                    .client = request.client,
                                                    .request_release = request.frame.release,
                                                    .request = request.request,
                                                    .operation = request.operation,
                                                    .op = op,
                                                    .timestamp = timestamp},
                                        reply_body);
  const ReplyHeader reply_header = HeaderAs<ReplyHeader>(HeaderOf(reply));
  Session* session = sessions_.Find(request.client);
  TB_ASSERT(session != nullptr);
  session->last_op = op;
  session->request = request.request;
  session->request_checksum = request.frame.checksum;
  session->reply_context = reply_header.context;
  session->release = request.frame.release;
  session->reply = reply;

  Decision decision;
  decision.verdict = Verdict::kReply;
  // The primary answers on its connection for this client, and one backup answers too: the one
  // that forwarded the request, or one chosen from the op number (§9.5).
  AddSend(decision, connections_.Find(primary(), request.client), reply);
  if (options_.replica_count > 1) {
    const uint8_t backup =
        forwarded
            ? arrival_replica
            : static_cast<uint8_t>((primary() + 1 + op % (options_.replica_count - 1)) %
                                   options_.replica_count);
    AddSend(decision, connections_.Find(backup, request.client), reply);
  }
  return decision;
}

Decision ReplicaProtocol::Evict(const Arrival& arrival, u128 client, EvictionReason reason) {
  Decision decision;
  decision.verdict = Verdict::kEviction;
  decision.eviction_reason = reason;
  decision.note = EvictionReasonName(reason);
  // On the arrival connection; a forwarded request's eviction goes out through the primary's
  // own connection to the client, if it has one.
  const std::optional<ConnectionId> target =
      arrival.forwarded ? connections_.Find(primary(), client)
                        : std::optional<ConnectionId>(arrival.connection);
  AddSend(decision, target, BuildEviction(SenderFor(primary()), client, reason));
  return decision;
}

Decision ReplicaProtocol::Duplicate(const Arrival& arrival, Session& session) {
  TB_ASSERT(session.reply != nullptr);
  session.reply = WithRaisedView(session.reply, view_);
  Decision decision;
  decision.verdict = Verdict::kDuplicate;
  AddSend(decision, connections_.Find(arrival.replica, session.client), session.reply);
  return decision;
}

}  // namespace tb::replica
