#include "proxy/native/native_frontend.h"

#include <asio.hpp>
#include <array>
#include <atomic>
#include <cstddef>
#include <memory>
#include <utility>
#include <variant>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "client_core/assert.h"
#include "client_core/constants.h"
#include "client_core/header.h"
#include "client_core/replica/replica_connection.h"
#include "client_core/replica/replica_listener.h"
#include "client_core/replica/replica_protocol.h"
#include "proxy/log/log.h"
#include "proxy/native/native_executor.h"

namespace tb::proxy {

using replica::CloseReason;
using replica::ConnectionId;
using replica::Decision;
using replica::ReplicaConnection;
using replica::ReplicaListener;
using replica::Verdict;

struct NativeFrontend::Parts final : replica::ReplicaListenerHandler,
                                     replica::ReplicaConnectionHandler {
  Parts(asio::io_context& io_in, const NativeFrontendOptions& options_in, Submitter* submitter)
      : options(options_in),
        io(io_in),
        executor(submitter,
                 [this](uint64_t token, NativeCompletion completion) {
                   Deliver(token, std::move(completion));
                 },
                 options_in.request_timeout),
        protocol(replica::ReplicaProtocolOptions{.cluster = options_in.cluster,
                                                 .replica_count = 1,
                                                 .clients_max = options_in.sessions_max},
                 &executor) {}

  void OnAccepted(std::shared_ptr<ReplicaConnection> connection) override;
  void OnAcceptError(const absl::Status&) override { accept_errors++; }
  void OnMessage(ReplicaConnection& connection, std::span<const uint8_t> message) override;
  void OnClosed(ReplicaConnection& connection, CloseReason reason,
                const absl::Status& status) override;
  // Any thread: queues a completion for the I/O thread. Completions arrive in bursts (one
  // cluster reply answers many calls), so only the first of a burst posts to the I/O thread.
  void Deliver(uint64_t token, NativeCompletion completion);
  void RunCompletions();  // I/O thread: every queued completion, in arrival order.
  void OnCompletion(uint64_t token, NativeCompletion completion);
  void Apply(const Decision& decision);
  // Closes the connections holding the most unread replies until `bytes` more fit under
  // write_queue_bytes_total_max; false if `target` was one of them.
  bool MakeRoom(const ReplicaConnection& target, uint64_t bytes);
  void Count(const Decision& decision);
  void Close(ConnectionId id);
  void CloseAll();  // Once nothing runs io.

  NativeFrontendOptions options;
  asio::io_context& io;  // The caller's; one thread runs it (the I/O thread).
  using Completions = std::vector<std::pair<uint64_t, NativeCompletion>>;
  absl::Mutex completions_mutex;
  // At most one per pending request (ReplicaProtocol's sessions_max bound).
  Completions completions ABSL_GUARDED_BY(completions_mutex);
  Completions running;  // I/O thread: the batch RunCompletions() works through (kept allocated).
  NativeExecutor executor;
  replica::ReplicaProtocol protocol;  // I/O thread only.
  std::shared_ptr<ReplicaListener> listener;
  // I/O thread only.
  absl::flat_hash_map<ConnectionId, std::shared_ptr<ReplicaConnection>> connections;
  ConnectionId next_connection = 1;
  uint32_t batch_size_limit = 0;  // I/O thread; 0 until the pool reports one.
  bool stopped = false;

  std::atomic<uint64_t> connections_open{0};
  std::atomic<uint64_t> connections_refused{0};
  std::atomic<uint64_t> accept_errors{0};
  std::atomic<uint64_t> slow_readers_closed{0};
  // Every connection's queued reply bytes (ReplicaConnectionOptions::write_queue_bytes_all).
  std::atomic<uint64_t> reply_bytes_queued{0};
  std::atomic<uint64_t> sessions{0};
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> replies{0};
  std::atomic<uint64_t> duplicates{0};
  // By wire reason 1..8; slot 0 for any other value. Their sum is NativeFrontendStats::evictions.
  std::array<std::atomic<uint64_t>, kEvictionReasonMax + 1> evictions_by_reason{};
  std::atomic<uint64_t> drops{0};
  std::atomic<uint64_t> closes{0};
};

void NativeFrontend::Parts::OnAccepted(std::shared_ptr<ReplicaConnection> connection) {
  if (connections.size() >= options.connections_max) {
    connections_refused++;  // Dropping the connection closes it.
    return;
  }
  const ConnectionId id = next_connection++;
  connections.emplace(id, connection);
  protocol.OnConnectionOpened(id, 0);
  connections_open = connections.size();
  connection->Start(id, this);
}

void NativeFrontend::Parts::OnClosed(ReplicaConnection& connection, CloseReason reason,
                                     const absl::Status&) {
  if (reason == CloseReason::kFramingError) closes++;
  if (reason == CloseReason::kSlowReader) slow_readers_closed++;  // A client that does not read.
  connections.erase(connection.id());
  protocol.OnConnectionClosed(connection.id());
  connections_open = connections.size();
}

void NativeFrontend::Parts::Close(ConnectionId id) {
  auto it = connections.find(id);
  if (it != connections.end()) it->second->Close();  // OnClosed forgets it.
}

void NativeFrontend::Parts::CloseAll() {
  stopped = true;
  listener->Close();
  std::vector<ConnectionId> ids;
  for (const auto& [id, connection] : connections) ids.push_back(id);
  for (ConnectionId id : ids) Close(id);
}

void NativeFrontend::Parts::OnMessage(ReplicaConnection& connection,
                                      std::span<const uint8_t> message) {
  // The connection framed the message, so it holds a whole header.
  if (message.size() >= kHeaderSize &&
      message[offsetof(Frame, command)] == static_cast<uint8_t>(Command::kRequest)) {
    requests++;
  }
  if (batch_size_limit == 0) {
    drops++;  // No cluster session yet: the limit to announce is unknown. Clients retry.
    return;
  }
  // The connection checked the header (CheckFrame); the protocol need not checksum it again.
  const Decision decision = protocol.OnFramedMessage(
      connection.id(), message, static_cast<uint64_t>(absl::ToUnixNanos(absl::Now())));
  Apply(decision);
}

void NativeFrontend::Parts::Deliver(uint64_t token, NativeCompletion completion) {
  bool first = false;
  {
    absl::MutexLock lock(&completions_mutex);
    first = completions.empty();
    completions.emplace_back(token, std::move(completion));
  }
  if (first) asio::post(io, [this] { RunCompletions(); });
}

void NativeFrontend::Parts::RunCompletions() {
  TB_ASSERT(running.empty());
  {
    absl::MutexLock lock(&completions_mutex);
    running.swap(completions);
  }
  for (auto& [token, completion] : running) OnCompletion(token, std::move(completion));
  running.clear();
}

void NativeFrontend::Parts::OnCompletion(uint64_t token, NativeCompletion completion) {
  if (stopped) return;
  Decision decision;
  if (auto* result = std::get_if<replica::ExecuteResult>(&completion)) {
    decision = protocol.Complete(token, std::move(*result));
  } else {
    const auto failure = std::get<replica::CompletionFailure>(completion);
    decision = protocol.Complete(token, failure);
    if (failure == replica::CompletionFailure::kSessionLost) {
      Log(LogLevel::kWarning, "native_session_evicted",
          {{"reason", "outcome of a request unknown"}});
    }
  }
  Apply(decision);
}

void NativeFrontend::Parts::Count(const Decision& decision) {
  switch (decision.verdict) {
    case Verdict::kReply: replies++; break;
    case Verdict::kDuplicate:
      replies++;
      duplicates++;
      break;
    case Verdict::kEviction: {
      const auto reason = static_cast<size_t>(decision.eviction_reason);
      evictions_by_reason[reason < evictions_by_reason.size() ? reason : 0]++;
      break;
    }
    case Verdict::kDrop: drops++; break;
    case Verdict::kClose: closes++; break;
    case Verdict::kPong:
    case Verdict::kPending: break;
  }
  sessions = protocol.sessions().size();
}

void NativeFrontend::Parts::Apply(const Decision& decision) {
  Count(decision);
  for (const replica::Send& send : decision.sends) {
    auto it = connections.find(send.connection);
    if (it == connections.end()) continue;
    const std::shared_ptr<ReplicaConnection> target = it->second;  // MakeRoom may erase `it`.
    if (MakeRoom(*target, send.message->size())) target->Send(send.message);
  }
  for (ConnectionId close : decision.closes) Close(close);
}

bool NativeFrontend::Parts::MakeRoom(const ReplicaConnection& target, uint64_t bytes) {
  // Each round closes a connection with bytes queued, whose close uncounts them: it ends.
  while (reply_bytes_queued.load(std::memory_order_relaxed) + bytes >
         options.write_queue_bytes_total_max) {
    ReplicaConnection* largest = nullptr;
    for (const auto& [id, connection] : connections) {
      if (largest == nullptr || connection->write_queue_bytes() > largest->write_queue_bytes()) {
        largest = connection.get();
      }
    }
    // Nothing queued anywhere: the reply alone is within the total (at least one maximal reply).
    if (largest == nullptr || largest->write_queue_bytes() == 0) return true;
    slow_readers_closed++;
    const bool closes_target = largest == &target;
    largest->Close();  // OnClosed forgets it.
    if (closes_target) return false;
  }
  return true;
}

absl::StatusOr<std::unique_ptr<NativeFrontend>> NativeFrontend::Start(
    asio::io_context& io, const NativeFrontendOptions& options, Submitter* submitter) {
  if (options.sessions_max < 1 || options.sessions_max > replica::kClientsMaxLimit) {
    return absl::InvalidArgumentError(absl::StrCat("native sessions max ", options.sessions_max,
                                                   " is outside 1..", replica::kClientsMaxLimit));
  }
  if (options.write_queue_bytes_total_max < kNativeWriteQueueBytesMaxFloor) {
    return absl::InvalidArgumentError("native write queue total must hold one maximal reply");
  }
  if (options.connections_max < 1) {
    return absl::InvalidArgumentError("native connections max must be at least 1");
  }
  if (options.request_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("native request timeout must be positive");
  }
  asio::error_code error;
  asio::ip::make_address(options.host, error);  // The listener would resolve a name; refuse it.
  if (error) {
    return absl::InvalidArgumentError(
        absl::StrCat("native listen host '", options.host, "' is not a numeric address"));
  }
  auto parts = std::make_unique<Parts>(io, options, submitter);
  absl::StatusOr<std::shared_ptr<ReplicaListener>> listener = ReplicaListener::Listen(
      parts->io, {.host = options.host,
                  .port = options.port,
                  .connection = {.cluster = options.cluster,
                                 .write_queue_bytes_max = options.write_queue_bytes_max,
                                 .write_queue_bytes_all = &parts->reply_bytes_queued}});
  if (!listener.ok()) {
    return absl::Status(listener.status().code(),
                        absl::StrCat("native: ", listener.status().message()));
  }
  parts->listener = *std::move(listener);
  parts->listener->Start(parts.get());
  return std::unique_ptr<NativeFrontend>(new NativeFrontend(std::move(parts)));
}

NativeFrontend::NativeFrontend(std::unique_ptr<Parts> parts) : parts_(std::move(parts)) {}

NativeFrontend::~NativeFrontend() { Stop(); }

uint16_t NativeFrontend::port() const { return parts_->listener->port(); }

void NativeFrontend::SetBatchSizeLimit(uint32_t batch_size_limit) {
  if (batch_size_limit < kBatchSizeLimitMin || batch_size_limit > kBatchSizeLimitMax) return;
  Parts* raw = parts_.get();
  asio::post(raw->io, [raw, batch_size_limit] {
    raw->batch_size_limit = batch_size_limit;
    raw->protocol.SetBatchSizeLimit(batch_size_limit);
  });
}

NativeFrontendStats NativeFrontend::stats() const {
  const Parts& parts = *parts_;
  NativeFrontendStats stats{.connections_open = parts.connections_open,
                            .connections_refused = parts.connections_refused,
                            .accept_errors = parts.accept_errors,
                            .slow_readers_closed = parts.slow_readers_closed,
                            .reply_bytes_queued = parts.reply_bytes_queued,
                            .sessions = parts.sessions,
                            .requests = parts.requests,
                            .batches = parts.executor.batches_submitted(),
                            .replies = parts.replies,
                            .duplicates = parts.duplicates,
                            .drops = parts.drops,
                            .closes = parts.closes};
  for (size_t reason = 0; reason < stats.evictions_by_reason.size(); reason++) {
    stats.evictions_by_reason[reason] = parts.evictions_by_reason[reason];
    stats.evictions += stats.evictions_by_reason[reason];
  }
  return stats;
}

void NativeFrontend::Stop() {
  Parts* raw = parts_.get();
  // Nothing else touches the connections once the io_context is stopped.
  TB_ASSERT(raw->io.stopped(), "stop the io_context before the native front end on it");
  if (!raw->stopped) raw->CloseAll();
}

}  // namespace tb::proxy
