#include "devcluster/server.h"

#include <cstdio>
#include <deque>
#include <future>
#include <optional>
#include <random>
#include <span>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "asio.hpp"
#include "client_core/assert.h"
#include "client_core/replica/message_framer.h"
#include "devcluster/prepare_pipeline.h"

namespace tb::devcluster {
namespace {

using asio::ip::tcp;

bool IsReply(const MessageBytes& message) {
  return message->size() >= kHeaderSize &&
         (*message)[offsetof(Frame, command)] == static_cast<uint8_t>(Command::kReply);
}

}  // namespace

class Server::Impl : public std::enable_shared_from_this<Server::Impl> {
 public:
  Impl(asio::io_context& io_context, Executor* executor, ServerOptions options);

  absl::Status Start();
  void Stop();
  // Runs `function` on the io_context's thread and waits for it.
  void RunOnIoThread(absl::AnyInvocable<void()> function);

  void OnMessage(Connection& connection, std::span<const uint8_t> message);
  void OnFramingError(Connection& connection, const absl::Status& status);
  void OnConnectionClosed(ConnectionId id, uint8_t replica);
  void OnSlowReader() { stats_.slow_readers_closed++; }
  void SetView(uint32_t view) { protocol_.SetView(view); }
  void ResetConnections();

  asio::io_context& io_context() { return io_context_; }
  const ServerOptions& options() const { return options_; }
  ReplicaProtocol& protocol() { return protocol_; }
  void SetFaults(const FaultOptions& faults) {
    options_.faults = faults;
    random_.seed(faults.seed);
    pipeline_.SetOptions(faults.pipeline);
    PumpPipeline();
  }
  bool& paused() { return paused_; }
  ServerStats stats() const;
  const std::vector<uint16_t>& ports() const { return ports_; }

 private:
  void Accept(uint8_t replica);
  // Runs `message` through the protocol now: counts, logs, closes, applies the reset fault.
  // Returns the verdict and the sends still to deliver.
  std::pair<Verdict, PreparePipeline::Sends> Handle(Connection& connection,
                                                     std::span<const uint8_t> message);
  // The pipeline model (FaultOptions::pipeline): queue a request that a primary would prepare.
  void OfferToPipeline(ConnectionId connection, u128 client, std::span<const uint8_t> message);
  void Admit(PreparePipeline::Request request);
  // Sends the replies of committed prepares, admits queued requests, arms the commit timer.
  void PumpPipeline();
  void Deliver(const Send& send);
  void SendNow(ConnectionId connection, const MessageBytes& message);
  void Log(const Connection& connection, const Decision& decision) const;
  bool Chance(double probability) {
    return probability > 0 && std::uniform_real_distribution<double>(0, 1)(random_) < probability;
  }

  asio::io_context& io_context_;
  ServerOptions options_;
  ReplicaProtocol protocol_;
  std::vector<std::unique_ptr<tcp::acceptor>> acceptors_;
  std::vector<uint16_t> ports_;
  std::vector<uint32_t> connection_counts_;  // Per replica.
  absl::flat_hash_map<ConnectionId, std::shared_ptr<Connection>> connections_;
  ConnectionId next_connection_id_ = 1;
  absl::flat_hash_map<uint64_t, std::unique_ptr<asio::steady_timer>> delayed_;
  uint64_t next_delayed_id_ = 1;
  std::mt19937_64 random_;
  PreparePipeline pipeline_;
  asio::steady_timer pipeline_timer_;
  std::optional<PreparePipeline::Clock::time_point> pipeline_timer_at_;  // While a wait is set.
  ServerStats stats_;
  bool started_ = false;
  bool stopped_ = false;
  bool paused_ = false;
};

// One accepted TCP connection: reads and frames messages, writes a bounded queue.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(std::shared_ptr<Server::Impl> server, tcp::socket socket, ConnectionId id,
             uint8_t replica)
      : server_(std::move(server)),
        socket_(std::move(socket)),
        id_(id),
        replica_(replica),
        framer_(server_->options().protocol.cluster) {}

  ConnectionId id() const { return id_; }
  uint8_t replica() const { return replica_; }
  bool closed() const { return closed_; }

  void Start() { Read(); }

  void Send(const MessageBytes& message) {
    if (closed_) return;
    if (queued_bytes_ + message->size() > server_->options().send_queue_bytes_max) {
      server_->OnSlowReader();
      Close();
      return;
    }
    queued_bytes_ += message->size();
    queue_.push_back(message);
    if (!writing_) Write();
  }

  void Close() {
    if (closed_) return;
    closed_ = true;
    asio::error_code ignored;
    socket_.close(ignored);
    // A write in progress still refers to the queued messages until its handler runs.
    if (!writing_) queue_.clear();
    server_->OnConnectionClosed(id_, replica_);
  }

 private:
  void Read() {
    std::span<uint8_t> space = framer_.WritableSpan();
    socket_.async_read_some(asio::buffer(space.data(), space.size()),
                            [self = shared_from_this()](asio::error_code error, size_t size) {
                              self->OnRead(error, size);
                            });
  }

  void OnRead(asio::error_code error, size_t size) {
    if (closed_) return;
    if (error) {
      Close();
      return;
    }
    framer_.Commit(size);
    while (!closed_) {
      absl::StatusOr<std::span<const uint8_t>> message = framer_.Next();
      if (!message.ok()) {
        server_->OnFramingError(*this, message.status());
        Close();
        return;
      }
      if (message->empty()) break;
      server_->OnMessage(*this, *message);
    }
    if (!closed_) Read();
  }

  void Write() {
    TB_ASSERT(!writing_ && !queue_.empty());
    writing_ = true;
    buffers_.clear();
    // Gather several queued messages into one write; the queue keeps them alive meanwhile.
    constexpr size_t kWriteMessagesMax = 64;
    for (size_t i = 0; i < queue_.size() && i < kWriteMessagesMax; i++) {
      buffers_.push_back(asio::buffer(*queue_[i]));
    }
    asio::async_write(socket_, buffers_,
                      [self = shared_from_this(), count = buffers_.size()](
                          asio::error_code error, size_t) { self->OnWrite(error, count); });
  }

  void OnWrite(asio::error_code error, size_t count) {
    writing_ = false;
    if (closed_) {
      queue_.clear();
      return;
    }
    if (error) {
      Close();
      return;
    }
    for (size_t i = 0; i < count; i++) {
      queued_bytes_ -= queue_.front()->size();
      queue_.pop_front();
    }
    if (!queue_.empty()) Write();
  }

  std::shared_ptr<Server::Impl> server_;
  tcp::socket socket_;
  ConnectionId id_;
  uint8_t replica_;
  MessageFramer framer_;
  std::deque<MessageBytes> queue_;
  size_t queued_bytes_ = 0;
  std::vector<asio::const_buffer> buffers_;
  bool writing_ = false;
  bool closed_ = false;
};

namespace {

ReplicaProtocolOptions ProtocolOptions(const ServerOptions& options) {
  ReplicaProtocolOptions protocol = options.protocol;
  protocol.replica_count = static_cast<uint8_t>(options.addresses.size());
  return protocol;
}

}  // namespace

Server::Impl::Impl(asio::io_context& io_context, Executor* executor, ServerOptions options)
    : io_context_(io_context),
      options_(std::move(options)),
      protocol_(ProtocolOptions(options_), executor),
      connection_counts_(options_.addresses.size(), 0),
      random_(options_.faults.seed),
      pipeline_(options_.faults.pipeline),
      pipeline_timer_(io_context) {
  TB_ASSERT(ValidateServerOptions(options_).ok());
  options_.protocol = protocol_.options();
}

absl::Status Server::Impl::Start() {
  TB_ASSERT(!started_, "Start() is called once");
  started_ = true;
  for (uint8_t replica = 0; replica < options_.addresses.size(); replica++) {
    const ListenAddress& address = options_.addresses[replica];
    asio::error_code error;
    tcp::resolver resolver(io_context_);
    auto endpoints = resolver.resolve(address.host, std::to_string(address.port),
                                      tcp::resolver::passive | tcp::resolver::numeric_service,
                                      error);
    if (error || endpoints.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("cannot resolve ", address.host, ": ", error.message()));
    }
    const tcp::endpoint endpoint = endpoints.begin()->endpoint();
    auto acceptor = std::make_unique<tcp::acceptor>(io_context_);
    acceptor->open(endpoint.protocol(), error);
    if (!error) acceptor->set_option(tcp::acceptor::reuse_address(true), error);
    if (!error) acceptor->bind(endpoint, error);
    if (!error) acceptor->listen(asio::socket_base::max_listen_connections, error);
    uint16_t port = 0;
    if (!error) port = acceptor->local_endpoint(error).port();
    if (error) {
      return absl::UnavailableError(absl::StrCat("cannot listen on ", address.host, ":",
                                                 address.port, ": ", error.message()));
    }
    ports_.push_back(port);
    acceptors_.push_back(std::move(acceptor));
  }
  for (uint8_t replica = 0; replica < acceptors_.size(); replica++) Accept(replica);
  return absl::OkStatus();
}

void Server::Impl::Accept(uint8_t replica) {
  acceptors_[replica]->async_accept(
      [self = shared_from_this(), replica](asio::error_code error, tcp::socket socket) {
        if (self->stopped_ || error == asio::error::operation_aborted) return;
        if (!error) {
          if (self->connection_counts_[replica] >= self->options_.connections_max) {
            // As a real replica: accepted, then closed at once without a message (§2.4).
            self->stats_.connections_refused++;
            asio::error_code ignored;
            socket.close(ignored);
          } else {
            asio::error_code ignored;
            socket.set_option(tcp::no_delay(true), ignored);
            const ConnectionId id = self->next_connection_id_++;
            auto connection = std::make_shared<Connection>(self, std::move(socket), id, replica);
            self->connections_.emplace(id, connection);
            self->connection_counts_[replica]++;
            self->stats_.connections_accepted++;
            self->protocol_.OnConnectionOpened(id, replica);
            connection->Start();
          }
        } else {
          // Out of file descriptors, typically: back off instead of spinning on accept.
          auto timer = std::make_shared<asio::steady_timer>(self->io_context_,
                                                            std::chrono::milliseconds(100));
          timer->async_wait([self, replica, timer](asio::error_code wait_error) {
            if (!wait_error && !self->stopped_) self->Accept(replica);
          });
          return;
        }
        self->Accept(replica);
      });
}

void Server::Impl::Stop() {
  if (stopped_) return;
  stopped_ = true;
  for (auto& acceptor : acceptors_) {
    asio::error_code ignored;
    acceptor->close(ignored);
  }
  for (auto& [id, timer] : delayed_) timer->cancel();
  delayed_.clear();
  pipeline_timer_.cancel();
  pipeline_timer_at_.reset();
  pipeline_.Clear();
  ResetConnections();
}

void Server::Impl::ResetConnections() {
  std::vector<std::shared_ptr<Connection>> open;
  open.reserve(connections_.size());
  for (auto& [id, connection] : connections_) open.push_back(connection);
  for (auto& connection : open) {
    stats_.connections_reset++;
    connection->Close();
  }
}

void Server::Impl::RunOnIoThread(absl::AnyInvocable<void()> function) {
  if (io_context_.get_executor().running_in_this_thread() || io_context_.stopped()) {
    function();
    return;
  }
  std::promise<void> done;
  asio::post(io_context_, [&function, &done] {
    function();
    done.set_value();
  });
  done.get_future().wait();
}

void Server::Impl::OnConnectionClosed(ConnectionId id, uint8_t replica) {
  if (connections_.erase(id) == 1) {
    TB_ASSERT(connection_counts_[replica] > 0);
    connection_counts_[replica]--;
  }
  protocol_.OnConnectionClosed(id);
}

void Server::Impl::OnFramingError(Connection& connection, const absl::Status& status) {
  stats_.closes++;
  if (options_.log_messages) {
    std::fprintf(stderr, "devcluster: connection %llu closed: %s\n",
                 static_cast<unsigned long long>(connection.id()),
                 std::string(status.message()).c_str());
  }
}

void Server::Impl::OnMessage(Connection& connection, std::span<const uint8_t> message) {
  stats_.messages_received++;
  if (paused_) {
    stats_.messages_ignored_paused++;
    return;
  }
  if (pipeline_.active()) {
    if (std::optional<u128> client = RequestClient(message)) {
      if (pipeline_.Holds(*client)) {
        stats_.pipeline_ignored++;  // As a primary: "already queued" or "already preparing".
        return;
      }
      if (PipelinedClient(message, protocol_.sessions()).has_value()) {
        OfferToPipeline(connection.id(), *client, message);
        return;
      }
    }
  }
  for (const Send& send : Handle(connection, message).second) Deliver(send);
}

std::pair<Verdict, PreparePipeline::Sends> Server::Impl::Handle(
    Connection& connection, std::span<const uint8_t> message) {
  Decision decision =
      protocol_.OnMessage(connection.id(), message, static_cast<uint64_t>(absl::GetCurrentTimeNanos()));
  switch (decision.verdict) {
    case Verdict::kDrop: stats_.drops++; break;
    case Verdict::kClose: stats_.closes++; break;
    case Verdict::kPong: stats_.pongs++; break;
    case Verdict::kReply: stats_.replies++; break;
    case Verdict::kDuplicate: stats_.duplicates++; break;
    case Verdict::kEviction: stats_.evictions++; break;
    case Verdict::kPending: break;  // The dev cluster executes synchronously.
  }
  Log(connection, decision);
  for (ConnectionId id : decision.closes) {
    if (auto it = connections_.find(id); it != connections_.end()) {
      std::shared_ptr<Connection> closing = it->second;
      closing->Close();
    }
  }
  const bool reset = Chance(options_.faults.connection_reset_probability);
  PreparePipeline::Sends sends;
  for (Send& send : decision.sends) {
    if (reset && send.connection == connection.id()) continue;
    sends.push_back(std::move(send));
  }
  if (reset && !connection.closed()) {
    stats_.connections_reset++;
    connection.Close();
  }
  return {decision.verdict, std::move(sends)};
}

void Server::Impl::OfferToPipeline(ConnectionId connection, u128 client,
                                   std::span<const uint8_t> message) {
  if (!pipeline_.Enqueue({.connection = connection,
                          .client = client,
                          .message = std::vector<uint8_t>(message.begin(), message.end())})) {
    stats_.pipeline_queue_full++;  // As a primary: dropped, the client retries.
    if (options_.log_messages) {
      std::fprintf(stderr, "devcluster: connection %llu: request dropped, pipeline full\n",
                   static_cast<unsigned long long>(connection));
    }
    return;
  }
  PumpPipeline();
}

void Server::Impl::Admit(PreparePipeline::Request request) {
  auto it = connections_.find(request.connection);
  if (it == connections_.end()) {
    pipeline_.Abandon(request.client);  // Closed while queued: the client will retry.
    return;
  }
  std::shared_ptr<Connection> connection = it->second;
  auto [verdict, sends] = Handle(*connection, request.message);
  if (verdict == Verdict::kReply) {
    pipeline_.Admitted(request.client, PreparePipeline::Clock::now(), std::move(sends));
    return;
  }
  pipeline_.Abandon(request.client);
  for (const Send& send : sends) Deliver(send);
}

void Server::Impl::PumpPipeline() {
  if (stopped_) return;
  const PreparePipeline::Clock::time_point now = PreparePipeline::Clock::now();
  while (std::optional<PreparePipeline::Sends> sends = pipeline_.PopCommitted(now)) {
    stats_.pipeline_commits++;
    for (const Send& send : *sends) Deliver(send);
  }
  while (std::optional<PreparePipeline::Request> request = pipeline_.NextToAdmit()) {
    Admit(*std::move(request));
  }
  const std::optional<PreparePipeline::Clock::time_point> commit = pipeline_.NextCommit();
  if (!commit.has_value() || pipeline_timer_at_ == commit) return;
  pipeline_timer_at_ = commit;
  pipeline_timer_.expires_at(*commit);  // Cancels an earlier wait (operation_aborted).
  pipeline_timer_.async_wait([self = shared_from_this()](asio::error_code error) {
    if (error || self->stopped_) return;
    self->pipeline_timer_at_.reset();
    self->PumpPipeline();
  });
}

void Server::Impl::Deliver(const Send& send) {
  if (!IsReply(send.message)) {
    SendNow(send.connection, send.message);
    return;
  }
  if (Chance(options_.faults.reply_drop_probability)) {
    stats_.replies_lost++;
    return;
  }
  if (options_.faults.reply_delay <= absl::ZeroDuration()) {
    SendNow(send.connection, send.message);
    return;
  }
  if (delayed_.size() >= options_.delayed_replies_max) {
    stats_.replies_lost++;
    return;
  }
  const uint64_t delayed_id = next_delayed_id_++;
  auto timer = std::make_unique<asio::steady_timer>(
      io_context_, absl::ToChronoNanoseconds(options_.faults.reply_delay));
  timer->async_wait([self = shared_from_this(), delayed_id, send](asio::error_code error) {
    if (error || self->stopped_) return;
    self->delayed_.erase(delayed_id);
    self->SendNow(send.connection, send.message);
  });
  delayed_.emplace(delayed_id, std::move(timer));
}

void Server::Impl::SendNow(ConnectionId connection, const MessageBytes& message) {
  auto it = connections_.find(connection);
  if (it == connections_.end()) return;  // Closed meanwhile: the client will retry.
  std::shared_ptr<Connection> target = it->second;
  target->Send(message);
}

void Server::Impl::Log(const Connection& connection, const Decision& decision) const {
  if (!options_.log_messages) return;
  if (decision.verdict == Verdict::kReply || decision.verdict == Verdict::kPong) return;
  std::fprintf(stderr, "devcluster: replica %d connection %llu: %s %s\n", connection.replica(),
               static_cast<unsigned long long>(connection.id()), VerdictName(decision.verdict),
               decision.note.c_str());
}

ServerStats Server::Impl::stats() const {
  ServerStats stats = stats_;
  stats.connections_open = connections_.size();
  stats.pipeline_prepares = pipeline_.prepares();
  stats.pipeline_prepares_max_seen = pipeline_.prepares_max_seen();
  stats.pipeline_requests_queued = pipeline_.queued();
  return stats;
}

// ---- Server ------------------------------------------------------------------------------------

Server::Server(asio::io_context& io_context, Executor* executor, ServerOptions options)
    : impl_(std::make_shared<Impl>(io_context, executor, std::move(options))) {}

Server::~Server() { impl_->Stop(); }

absl::Status Server::Start() { return impl_->Start(); }

std::vector<uint16_t> Server::ports() const { return impl_->ports(); }

std::string Server::ListeningAddresses() const {
  std::vector<std::string> parts;
  const auto& addresses = impl_->options().addresses;
  for (size_t i = 0; i < impl_->ports().size(); i++) {
    const std::string& host = addresses[i].host;
    const bool ipv6 = host.find(':') != std::string::npos;
    parts.push_back(absl::StrCat(ipv6 ? "[" : "", host, ipv6 ? "]" : "", ":",
                                 impl_->ports()[i]));
  }
  return absl::StrJoin(parts, ",");
}

void Server::Stop() {
  impl_->RunOnIoThread([impl = impl_.get()] { impl->Stop(); });
}

void Server::SetView(uint32_t view) {
  impl_->RunOnIoThread([impl = impl_.get(), view] { impl->SetView(view); });
}

void Server::AdvanceView() {
  impl_->RunOnIoThread([impl = impl_.get()] { impl->SetView(impl->protocol().view() + 1); });
}

uint32_t Server::view() {
  uint32_t view = 0;
  impl_->RunOnIoThread([impl = impl_.get(), &view] { view = impl->protocol().view(); });
  return view;
}

void Server::SetFaults(const FaultOptions& faults) {
  TB_ASSERT(ValidateFaultOptions(faults).ok());
  impl_->RunOnIoThread([impl = impl_.get(), faults] { impl->SetFaults(faults); });
}

void Server::Pause() {
  impl_->RunOnIoThread([impl = impl_.get()] { impl->paused() = true; });
}

void Server::Resume() {
  impl_->RunOnIoThread([impl = impl_.get()] { impl->paused() = false; });
}

void Server::ResetConnections() {
  impl_->RunOnIoThread([impl = impl_.get()] { impl->ResetConnections(); });
}

ServerStats Server::stats() {
  ServerStats stats;
  impl_->RunOnIoThread([impl = impl_.get(), &stats] { stats = impl->stats(); });
  return stats;
}

}  // namespace tb::devcluster
