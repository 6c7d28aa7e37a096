#include "proxy/grpc/grpc_listener.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "asio.hpp"
#include "client_core/assert.h"
#include "proxy/grpc/handed_off_sockets.h"

namespace tb::proxy {

namespace {

// One bound address.
struct ListeningSocket {
  explicit ListeningSocket(asio::io_context& io) : acceptor(io), backoff(io) {}
  asio::ip::tcp::acceptor acceptor;
  asio::steady_timer backoff;
};

}  // namespace

struct GrpcListener::Parts {
  explicit Parts(const GrpcListenerOptions& options) : options(options), recount_timer(io) {}

  absl::Status Bind();
  // Binds and listens on `endpoint`; false, with the first failure kept in `first_error`, if
  // it cannot.
  bool BindOne(asio::ip::tcp::endpoint endpoint, std::string* first_error);
  void Accept(ListeningSocket& socket);
  void AcceptAfterBackoff(ListeningSocket& socket);
  void OnAccepted(int listener_fd, asio::ip::tcp::socket socket);
  void Recount();
  void RecountEvery();
  void Close();

  const GrpcListenerOptions options;
  asio::io_context io;
  std::vector<std::unique_ptr<ListeningSocket>> listening;
  uint16_t port = 0;
  asio::steady_timer recount_timer;
  std::thread thread;
  Handoff handoff;

  // Owned by the listener's thread once started.
  HandedOffSockets handed_off;
  std::chrono::steady_clock::time_point last_recount{};
  bool closed = false;

  std::atomic<uint64_t> open{0};
  std::atomic<uint64_t> refused{0};
  std::atomic<uint64_t> accept_errors{0};
  bool started = false;  // Start/Stop's caller's.
  bool stopped = false;
};

absl::Status GrpcListener::Parts::Bind() {
  asio::error_code error;
  asio::ip::tcp::resolver resolver(io);
  auto resolved = resolver.resolve(
      options.host, std::to_string(options.port),
      asio::ip::tcp::resolver::passive | asio::ip::tcp::resolver::numeric_service, error);
  if (error || resolved.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot resolve ", options.host, ": ", error.message()));
  }
  std::vector<asio::ip::tcp::endpoint> endpoints;
  for (const auto& entry : resolved) endpoints.push_back(entry.endpoint());
  std::string first_error;
  // A wildcard address (0.0.0.0 or ::) serves both families, as gRPC's own listener does: one
  // dual-stack IPv6 socket, or IPv4 alone where IPv6 is off.
  if (endpoints.size() == 1 && endpoints[0].address().is_unspecified()) {
    if (BindOne({asio::ip::address_v6::any(), options.port}, &first_error)) {
      return absl::OkStatus();
    }
    endpoints = {{asio::ip::address_v4::any(), options.port}};
  }
  for (const asio::ip::tcp::endpoint& endpoint : endpoints) BindOne(endpoint, &first_error);
  if (listening.empty()) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", options.host, ":",
                                               options.port, " (", first_error, ")"));
  }
  return absl::OkStatus();
}

bool GrpcListener::Parts::BindOne(asio::ip::tcp::endpoint endpoint, std::string* first_error) {
  if (port != 0) endpoint.port(port);  // Port 0: every address gets the first one's port.
  auto bound = std::make_unique<ListeningSocket>(io);
  asio::ip::tcp::acceptor& acceptor = bound->acceptor;
  asio::error_code error;
  acceptor.open(endpoint.protocol(), error);
  // SO_REUSEADDR, never SO_REUSEPORT: a port another process listens on is an error, not a
  // silent share of its traffic.
  if (!error) acceptor.set_option(asio::ip::tcp::acceptor::reuse_address(true), error);
  if (!error && endpoint.address().is_unspecified() && endpoint.address().is_v6()) {
    acceptor.set_option(asio::ip::v6_only(false), error);
  }
  if (!error) acceptor.bind(endpoint, error);
  if (!error) acceptor.listen(asio::socket_base::max_listen_connections, error);
  if (!error && port == 0) port = acceptor.local_endpoint(error).port();
  if (error) {
    if (first_error->empty()) {
      *first_error = absl::StrCat(endpoint.address().to_string(), ": ", error.message());
    }
    return false;
  }
  listening.push_back(std::move(bound));
  return true;
}

void GrpcListener::Parts::Accept(ListeningSocket& bound) {
  bound.acceptor.async_accept([this, &bound](asio::error_code error,
                                             asio::ip::tcp::socket socket) {
    if (closed) return;
    if (error) {
      accept_errors.fetch_add(1, std::memory_order_relaxed);
      AcceptAfterBackoff(bound);
      return;
    }
    OnAccepted(bound.acceptor.native_handle(), std::move(socket));
    Accept(bound);
  });
}

void GrpcListener::Parts::AcceptAfterBackoff(ListeningSocket& bound) {
  bound.backoff.expires_after(absl::ToChronoNanoseconds(options.accept_backoff));
  bound.backoff.async_wait([this, &bound](asio::error_code error) {
    if (!error && !closed) Accept(bound);
  });
}

void GrpcListener::Parts::OnAccepted(int listener_fd, asio::ip::tcp::socket socket) {
  if (handed_off.size() >= options.connections_max &&
      std::chrono::steady_clock::now() - last_recount >=
          absl::ToChronoNanoseconds(options.refusal_recount_interval_min)) {
    Recount();
  }
  if (handed_off.size() >= options.connections_max) {
    refused.fetch_add(1, std::memory_order_relaxed);
    return;  // `socket` closes here.
  }
  asio::error_code error;
  socket.native_non_blocking(true, error);
  if (!error) socket.set_option(asio::ip::tcp::no_delay(true), error);
  if (!error && options.tcp_user_timeout > absl::ZeroDuration()) {
    using UserTimeout = asio::detail::socket_option::integer<IPPROTO_TCP, TCP_USER_TIMEOUT>;
    socket.set_option(
        UserTimeout(static_cast<int>(absl::ToInt64Milliseconds(options.tcp_user_timeout))),
        error);
  }
  if (error) {
    accept_errors.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  const int fd = socket.release(error);
  TB_ASSERT(!error && fd >= 0);
  if (absl::Status added = handed_off.Add(fd); !added.ok()) {
    accept_errors.fetch_add(1, std::memory_order_relaxed);
    ::close(fd);
    return;
  }
  open.store(handed_off.size(), std::memory_order_relaxed);
  handoff(fd, listener_fd);
}

void GrpcListener::Parts::Recount() {
  handed_off.Sweep();
  last_recount = std::chrono::steady_clock::now();
  open.store(handed_off.size(), std::memory_order_relaxed);
}

void GrpcListener::Parts::RecountEvery() {
  recount_timer.expires_after(absl::ToChronoNanoseconds(options.recount_interval));
  recount_timer.async_wait([this](asio::error_code error) {
    if (error || closed) return;
    Recount();
    RecountEvery();
  });
}

void GrpcListener::Parts::Close() {
  closed = true;
  asio::error_code ignored;
  for (auto& bound : listening) {
    bound->acceptor.close(ignored);
    bound->backoff.cancel();
  }
  recount_timer.cancel();
}

GrpcListener::GrpcListener(std::unique_ptr<Parts> parts) : parts_(std::move(parts)) {}

GrpcListener::~GrpcListener() { Stop(); }

absl::StatusOr<std::unique_ptr<GrpcListener>> GrpcListener::Listen(
    const GrpcListenerOptions& options) {
  TB_ASSERT(options.connections_max >= 1);
  TB_ASSERT(options.recount_interval > absl::ZeroDuration());
  TB_ASSERT(options.accept_backoff > absl::ZeroDuration());
  auto parts = std::make_unique<Parts>(options);
  if (absl::Status bound = parts->Bind(); !bound.ok()) return bound;
  return std::unique_ptr<GrpcListener>(new GrpcListener(std::move(parts)));
}

void GrpcListener::Start(Handoff handoff) {
  TB_ASSERT(!parts_->started, "Start() is called once");
  TB_ASSERT(handoff != nullptr);
  parts_->started = true;
  if (parts_->stopped) return;
  parts_->handoff = std::move(handoff);
  for (auto& bound : parts_->listening) parts_->Accept(*bound);
  parts_->RecountEvery();
  parts_->thread = std::thread([parts = parts_.get()] {
    pthread_setname_np(pthread_self(), "tb-grpc-accept");
    parts->io.run();
  });
}

void GrpcListener::Stop() {
  if (parts_->stopped) return;
  parts_->stopped = true;
  if (!parts_->thread.joinable()) {
    parts_->Close();
    return;
  }
  // The handlers then finish with operation_aborted and run() runs out of work.
  asio::post(parts_->io, [parts = parts_.get()] { parts->Close(); });
  parts_->thread.join();
}

uint16_t GrpcListener::port() const { return parts_->port; }

GrpcListenerStats GrpcListener::stats() const {
  return {.open = parts_->open.load(std::memory_order_relaxed),
          .refused = parts_->refused.load(std::memory_order_relaxed),
          .accept_errors = parts_->accept_errors.load(std::memory_order_relaxed)};
}

}  // namespace tb::proxy
