#include "devcluster/server.h"

#include <cstdio>
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
#include "client_core/replica/replica_connection.h"
#include "client_core/replica/replica_listener.h"
#include "devcluster/prepare_pipeline.h"

namespace tb::devcluster {
namespace {

using replica::CloseReason;
using replica::ReplicaConnection;
using replica::ReplicaListener;

bool IsReply(const MessageBytes& message) {
  return message->size() >= kHeaderSize &&
         (*message)[offsetof(Frame, command)] == static_cast<uint8_t>(Command::kReply);
}

}  // namespace

class Server::Impl : public std::enable_shared_from_this<Server::Impl>,
                     public replica::ReplicaListenerHandler,
                     public replica::ReplicaConnectionHandler {
 public:
  Impl(asio::io_context& io_context, Executor* executor, ServerOptions options);

  absl::Status Start();
  void Stop();
  // Runs `function` on the io_context's thread and waits for it.
  void RunOnIoThread(absl::AnyInvocable<void()> function);

  void OnAccepted(std::shared_ptr<ReplicaConnection> connection) override;
  void OnAcceptError(const absl::Status& status) override;
  void OnMessage(ReplicaConnection& connection, std::span<const uint8_t> message) override;
  void OnClosed(ReplicaConnection& connection, CloseReason reason,
                const absl::Status& status) override;
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
  // Runs `message` through the protocol now: counts, logs, closes, applies the reset fault.
  // Returns the verdict and the sends still to deliver.
  std::pair<Verdict, PreparePipeline::Sends> Handle(ReplicaConnection& connection,
                                                     std::span<const uint8_t> message);
  // The pipeline model (FaultOptions::pipeline): queue a request that a primary would prepare.
  void OfferToPipeline(ConnectionId connection, u128 client, std::span<const uint8_t> message);
  void Admit(PreparePipeline::Request request);
  // Sends the replies of committed prepares, admits queued requests, arms the commit timer.
  void PumpPipeline();
  void Deliver(const Send& send);
  void SendNow(ConnectionId connection, const MessageBytes& message);
  void Log(const ReplicaConnection& connection, const Decision& decision) const;
  bool Chance(double probability) {
    return probability > 0 && std::uniform_real_distribution<double>(0, 1)(random_) < probability;
  }

  asio::io_context& io_context_;
  ServerOptions options_;
  ReplicaProtocol protocol_;
  std::vector<std::shared_ptr<ReplicaListener>> listeners_;  // Per replica.
  std::vector<uint16_t> ports_;
  std::vector<uint32_t> connection_counts_;  // Per replica.
  absl::flat_hash_map<ConnectionId, std::shared_ptr<ReplicaConnection>> connections_;
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
    absl::StatusOr<std::shared_ptr<ReplicaListener>> listener = ReplicaListener::Listen(
        io_context_,
        {.host = address.host,
         .port = address.port,
         .replica = replica,
         .connection = {.cluster = options_.protocol.cluster,
                        .write_queue_bytes_max = options_.send_queue_bytes_max}});
    if (!listener.ok()) return listener.status();
    ports_.push_back((*listener)->port());
    listeners_.push_back(*std::move(listener));
  }
  for (auto& listener : listeners_) listener->Start(this);
  return absl::OkStatus();
}

void Server::Impl::OnAccepted(std::shared_ptr<ReplicaConnection> connection) {
  const uint8_t replica = connection->replica();
  if (connection_counts_[replica] >= options_.connections_max) {
    // As a real replica: accepted, then closed at once without a message (§2.4).
    stats_.connections_refused++;
    return;
  }
  const ConnectionId id = next_connection_id_++;
  connections_.emplace(id, connection);
  connection_counts_[replica]++;
  stats_.connections_accepted++;
  protocol_.OnConnectionOpened(id, replica);
  connection->Start(id, this);
}

void Server::Impl::OnAcceptError(const absl::Status& status) {
  stats_.accept_errors++;  // The listener retries after a pause.
  if (options_.log_messages) {
    std::fprintf(stderr, "devcluster: %s\n", std::string(status.message()).c_str());
  }
}

void Server::Impl::Stop() {
  if (stopped_) return;
  stopped_ = true;
  for (auto& listener : listeners_) listener->Close();
  for (auto& [id, timer] : delayed_) timer->cancel();
  delayed_.clear();
  pipeline_timer_.cancel();
  pipeline_timer_at_.reset();
  pipeline_.Clear();
  ResetConnections();
}

void Server::Impl::ResetConnections() {
  std::vector<std::shared_ptr<ReplicaConnection>> open;
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

void Server::Impl::OnClosed(ReplicaConnection& connection, CloseReason reason,
                            const absl::Status& status) {
  if (reason == CloseReason::kSlowReader) stats_.slow_readers_closed++;
  if (reason == CloseReason::kFramingError) {
    stats_.closes++;
    if (options_.log_messages) {
      std::fprintf(stderr, "devcluster: connection %llu closed: %s\n",
                   static_cast<unsigned long long>(connection.id()),
                   std::string(status.message()).c_str());
    }
  }
  if (connections_.erase(connection.id()) == 1) {
    TB_ASSERT(connection_counts_[connection.replica()] > 0);
    connection_counts_[connection.replica()]--;
  }
  protocol_.OnConnectionClosed(connection.id());
}

void Server::Impl::OnMessage(ReplicaConnection& connection, std::span<const uint8_t> message) {
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
    ReplicaConnection& connection, std::span<const uint8_t> message) {
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
      it->second->Close();
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
  std::shared_ptr<ReplicaConnection> connection = it->second;
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
  it->second->Send(message);
}

void Server::Impl::Log(const ReplicaConnection& connection, const Decision& decision) const {
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
