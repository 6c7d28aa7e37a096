#include "client_core/replica/replica_listener.h"

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "asio.hpp"
#include "client_core/assert.h"
#include "client_core/replica/internal/connection_io.h"

namespace tb::replica {

struct ReplicaListener::Parts {
  explicit Parts(asio::io_context& io_context) : acceptor(io_context), backoff(io_context) {}
  asio::ip::tcp::acceptor acceptor;
  asio::steady_timer backoff;
};

ReplicaListener::ReplicaListener(asio::io_context& io_context, ReplicaListenerOptions options)
    : parts_(std::make_unique<Parts>(io_context)), options_(std::move(options)) {}

ReplicaListener::~ReplicaListener() = default;

absl::StatusOr<std::shared_ptr<ReplicaListener>> ReplicaListener::Listen(
    asio::io_context& io_context, ReplicaListenerOptions options) {
  TB_ASSERT(options.accept_backoff > absl::ZeroDuration());
  std::shared_ptr<ReplicaListener> listener(
      new ReplicaListener(io_context, std::move(options)));
  if (absl::Status bound = listener->Bind(); !bound.ok()) return bound;
  return listener;
}

absl::Status ReplicaListener::Bind() {
  asio::ip::tcp::acceptor& acceptor = parts_->acceptor;
  asio::error_code error;
  asio::ip::tcp::resolver resolver(acceptor.get_executor());
  auto endpoints = resolver.resolve(
      options_.host, std::to_string(options_.port),
      asio::ip::tcp::resolver::passive | asio::ip::tcp::resolver::numeric_service, error);
  if (error || endpoints.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot resolve ", options_.host, ": ", error.message()));
  }
  const asio::ip::tcp::endpoint endpoint = endpoints.begin()->endpoint();
  acceptor.open(endpoint.protocol(), error);
  if (!error) acceptor.set_option(asio::ip::tcp::acceptor::reuse_address(true), error);
  if (!error) acceptor.bind(endpoint, error);
  if (!error) acceptor.listen(asio::socket_base::max_listen_connections, error);
  if (!error) port_ = acceptor.local_endpoint(error).port();
  if (error) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", options_.host, ":",
                                               options_.port, ": ", error.message()));
  }
  return absl::OkStatus();
}

void ReplicaListener::Start(ReplicaListenerHandler* handler) {
  TB_ASSERT(handler != nullptr);
  TB_ASSERT(handler_ == nullptr, "Start() is called once");
  handler_ = handler;
  if (!closed_) Accept();
}

void ReplicaListener::Close() {
  if (closed_) return;
  closed_ = true;
  asio::error_code ignored;
  parts_->acceptor.close(ignored);
  parts_->backoff.cancel();
}

void ReplicaListener::Accept() {
  parts_->acceptor.async_accept([self = shared_from_this()](asio::error_code error,
                                                           asio::ip::tcp::socket socket) {
    if (self->closed_) return;
    if (error) {
      self->handler_->OnAcceptError(
          absl::UnavailableError(absl::StrCat("accept failed: ", error.message())));
      self->AcceptAfterBackoff();
      return;
    }
    asio::error_code ignored;
    socket.set_option(asio::ip::tcp::no_delay(true), ignored);
    self->handler_->OnAccepted(std::make_shared<ReplicaConnection>(
        std::make_unique<internal::ConnectionIo>(std::move(socket)), self->options_.replica,
        self->options_.connection));
    if (!self->closed_) self->Accept();
  });
}

void ReplicaListener::AcceptAfterBackoff() {
  parts_->backoff.expires_after(absl::ToChronoNanoseconds(options_.accept_backoff));
  parts_->backoff.async_wait([self = shared_from_this()](asio::error_code error) {
    if (!error && !self->closed_) self->Accept();
  });
}

}  // namespace tb::replica
