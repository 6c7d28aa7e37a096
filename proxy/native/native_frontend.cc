#include "proxy/native/native_frontend.h"

#include <asio.hpp>
#include <atomic>
#include <deque>
#include <thread>
#include <utility>
#include <variant>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client_core/assert.h"
#include "client_core/constants.h"
#include "client_core/replica/message_framer.h"
#include "client_core/replica/replica_protocol.h"
#include "proxy/log/log.h"
#include "proxy/native/native_executor.h"

namespace tb::proxy {

using replica::ConnectionId;
using replica::Decision;
using replica::MessageBytes;
using replica::Verdict;

namespace {

struct Connection {
  Connection(asio::ip::tcp::socket socket_in, u128 cluster)
      : socket(std::move(socket_in)), framer(cluster) {}
  asio::ip::tcp::socket socket;
  replica::MessageFramer framer;
  std::deque<MessageBytes> writes;
  uint64_t write_bytes = 0;
  bool writing = false;
};

}  // namespace

struct NativeFrontend::Parts {
  Parts(const NativeFrontendOptions& options_in, Submitter* submitter)
      : options(options_in),
        acceptor(io),
        executor(submitter,
                 [this](uint64_t token, NativeCompletion completion) {
                   asio::post(io, [this, token, completion = std::move(completion)]() mutable {
                     OnCompletion(token, std::move(completion));
                   });
                 }),
        protocol(replica::ReplicaProtocolOptions{.cluster = options_in.cluster,
                                                 .replica_count = 1,
                                                 .clients_max = options_in.sessions_max},
                 &executor) {}

  void Accept();
  void AcceptAfterBackoff();
  void Read(ConnectionId id);
  void Write(ConnectionId id);
  void Close(ConnectionId id);
  void OnMessage(ConnectionId id, std::span<const uint8_t> message);
  void OnCompletion(uint64_t token, NativeCompletion completion);
  void Apply(const Decision& decision);
  void Count(const Decision& decision);

  NativeFrontendOptions options;
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor;
  asio::steady_timer accept_backoff{io};
  NativeExecutor executor;
  replica::ReplicaProtocol protocol;  // I/O thread only.
  absl::flat_hash_map<ConnectionId, std::unique_ptr<Connection>> connections;  // I/O thread.
  ConnectionId next_connection = 1;
  uint32_t batch_size_limit = 0;  // I/O thread; 0 until the pool reports one.
  std::thread thread;
  uint16_t port = 0;
  bool stopped = false;

  std::atomic<uint64_t> connections_open{0};
  std::atomic<uint64_t> connections_refused{0};
  std::atomic<uint64_t> accept_errors{0};
  std::atomic<uint64_t> sessions{0};
  std::atomic<uint64_t> replies{0};
  std::atomic<uint64_t> evictions{0};
  std::atomic<uint64_t> drops{0};
  std::atomic<uint64_t> closes{0};
};

void NativeFrontend::Parts::Accept() {
  acceptor.async_accept([this](asio::error_code error, asio::ip::tcp::socket socket) {
    if (error == asio::error::operation_aborted || !acceptor.is_open()) return;
    if (error) {
      accept_errors++;
      AcceptAfterBackoff();
      return;
    }
    if (connections.size() >= options.connections_max) {
      connections_refused++;
      asio::error_code ignored;
      socket.close(ignored);
    } else {
      asio::error_code ignored;
      socket.set_option(asio::ip::tcp::no_delay(true), ignored);
      const ConnectionId id = next_connection++;
      connections.emplace(id, std::make_unique<Connection>(std::move(socket), options.cluster));
      protocol.OnConnectionOpened(id, 0);
      connections_open = connections.size();
      Read(id);
    }
    Accept();
  });
}

void NativeFrontend::Parts::AcceptAfterBackoff() {
  // Out of file descriptors, typically: the connection stays in the backlog, so accepting again at
  // once fails again at once and the I/O thread would spin.
  accept_backoff.expires_after(std::chrono::milliseconds(100));
  accept_backoff.async_wait([this](asio::error_code error) {
    if (!error && acceptor.is_open()) Accept();
  });
}

void NativeFrontend::Parts::Read(ConnectionId id) {
  auto it = connections.find(id);
  if (it == connections.end()) return;
  Connection& connection = *it->second;
  const std::span<uint8_t> space = connection.framer.WritableSpan();
  connection.socket.async_read_some(
      asio::buffer(space.data(), space.size()), [this, id](asio::error_code error, size_t size) {
        auto it = connections.find(id);
        if (it == connections.end()) return;
        if (error) {
          Close(id);
          return;
        }
        Connection& connection = *it->second;
        connection.framer.Commit(size);
        while (true) {
          absl::StatusOr<std::span<const uint8_t>> message = connection.framer.Next();
          if (!message.ok()) {
            closes++;
            Close(id);
            return;
          }
          if (message->empty()) break;
          OnMessage(id, *message);
          // The connection may have been closed by the decision.
          if (!connections.contains(id)) return;
        }
        Read(id);
      });
}

void NativeFrontend::Parts::OnMessage(ConnectionId id, std::span<const uint8_t> message) {
  if (batch_size_limit == 0) {
    drops++;  // No cluster session yet: the limit to announce is unknown. Clients retry.
    return;
  }
  const Decision decision =
      protocol.OnMessage(id, message, static_cast<uint64_t>(absl::ToUnixNanos(absl::Now())));
  Apply(decision);
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
    case Verdict::kReply:
    case Verdict::kDuplicate: replies++; break;
    case Verdict::kEviction: evictions++; break;
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
    Connection& connection = *it->second;
    connection.write_bytes += send.message->size();
    if (connection.write_bytes > options.write_queue_bytes_max) {
      Close(send.connection);  // A client that does not read.
      continue;
    }
    connection.writes.push_back(send.message);
    if (!connection.writing) Write(send.connection);
  }
  for (ConnectionId close : decision.closes) Close(close);
}

void NativeFrontend::Parts::Write(ConnectionId id) {
  auto it = connections.find(id);
  if (it == connections.end()) return;
  Connection& connection = *it->second;
  if (connection.writes.empty()) {
    connection.writing = false;
    return;
  }
  connection.writing = true;
  const MessageBytes message = connection.writes.front();
  asio::async_write(connection.socket, asio::buffer(*message),
                    [this, id, message](asio::error_code error, size_t) {
                      auto it = connections.find(id);
                      if (it == connections.end()) return;
                      if (error) {
                        Close(id);
                        return;
                      }
                      Connection& connection = *it->second;
                      connection.writes.pop_front();
                      connection.write_bytes -= message->size();
                      Write(id);
                    });
}

void NativeFrontend::Parts::Close(ConnectionId id) {
  auto it = connections.find(id);
  if (it == connections.end()) return;
  asio::error_code ignored;
  it->second->socket.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  it->second->socket.close(ignored);
  // Handlers still queued for this socket find the id gone; keep the object alive until they ran.
  asio::post(io, [connection = std::shared_ptr<Connection>(std::move(it->second))] {});
  connections.erase(it);
  protocol.OnConnectionClosed(id);
  connections_open = connections.size();
}

absl::StatusOr<std::unique_ptr<NativeFrontend>> NativeFrontend::Start(
    const NativeFrontendOptions& options, Submitter* submitter) {
  if (options.sessions_max < 1 || options.sessions_max > replica::kClientsMaxLimit) {
    return absl::InvalidArgumentError(absl::StrCat("native sessions max ", options.sessions_max,
                                                   " is outside 1..", replica::kClientsMaxLimit));
  }
  if (options.connections_max < 1) {
    return absl::InvalidArgumentError("native connections max must be at least 1");
  }
  asio::error_code error;
  const asio::ip::address address = asio::ip::make_address(options.host, error);
  if (error) {
    return absl::InvalidArgumentError(
        absl::StrCat("native listen host '", options.host, "' is not a numeric address"));
  }
  auto parts = std::make_unique<Parts>(options, submitter);
  const asio::ip::tcp::endpoint endpoint(address, options.port);
  parts->acceptor.open(endpoint.protocol(), error);
  if (!error) parts->acceptor.set_option(asio::ip::tcp::acceptor::reuse_address(true), error);
  if (!error) parts->acceptor.bind(endpoint, error);
  if (!error) parts->acceptor.listen(asio::socket_base::max_listen_connections, error);
  if (error) {
    return absl::UnavailableError(absl::StrCat("native listen on ", options.host, ":",
                                               options.port, ": ", error.message()));
  }
  parts->port = parts->acceptor.local_endpoint().port();
  parts->Accept();
  Parts* raw = parts.get();
  parts->thread = std::thread([raw] { raw->io.run(); });
  return std::unique_ptr<NativeFrontend>(new NativeFrontend(std::move(parts)));
}

NativeFrontend::NativeFrontend(std::unique_ptr<Parts> parts) : parts_(std::move(parts)) {}

NativeFrontend::~NativeFrontend() { Stop(); }

uint16_t NativeFrontend::port() const { return parts_->port; }

void NativeFrontend::SetBatchSizeLimit(uint32_t batch_size_limit) {
  if (batch_size_limit < kBatchSizeLimitMin || batch_size_limit > kBatchSizeLimitMax) return;
  Parts* raw = parts_.get();
  asio::post(raw->io, [raw, batch_size_limit] {
    raw->batch_size_limit = batch_size_limit;
    raw->protocol.SetBatchSizeLimit(batch_size_limit);
  });
}

NativeFrontendStats NativeFrontend::stats() const {
  return NativeFrontendStats{.connections_open = parts_->connections_open,
                             .connections_refused = parts_->connections_refused,
                             .accept_errors = parts_->accept_errors,
                             .sessions = parts_->sessions,
                             .replies = parts_->replies,
                             .evictions = parts_->evictions,
                             .drops = parts_->drops,
                             .closes = parts_->closes};
}

void NativeFrontend::Stop() {
  Parts* raw = parts_.get();
  if (!raw->thread.joinable()) return;
  asio::post(raw->io, [raw] {
    raw->stopped = true;
    asio::error_code ignored;
    raw->acceptor.close(ignored);
    raw->accept_backoff.cancel();
    std::vector<ConnectionId> ids;
    for (const auto& [id, connection] : raw->connections) ids.push_back(id);
    for (ConnectionId id : ids) raw->Close(id);
    raw->io.stop();
  });
  raw->thread.join();
}

}  // namespace tb::proxy
