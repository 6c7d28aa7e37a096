#include "proxy/metrics/metrics_http.h"

#include <arpa/inet.h>
#include <civetweb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "client_core/assert.h"
#include "client_core/parse.h"

namespace tb::proxy {
namespace {

// How often the destructor connects to its own listener while civetweb stops (see there).
constexpr absl::Duration kStopWakeInterval = absl::Milliseconds(10);

// `address`, checked to be what civetweb can bind: it binds only numeric addresses and would
// otherwise log and fail obscurely.
absl::StatusOr<HostPort> ParseListenAddress(const std::string& address) {
  absl::StatusOr<HostPort> parsed = ParseHostPort(address, {.port_zero_allowed = true});
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("metrics ", parsed.status().message()));
  }
  in6_addr ignored;
  const bool ipv4 = inet_pton(AF_INET, parsed->host.c_str(), &ignored) == 1;
  const bool ipv6 = inet_pton(AF_INET6, parsed->host.c_str(), &ignored) == 1;
  if (!ipv4 && !ipv6) {
    return absl::InvalidArgumentError(absl::StrCat(
        "metrics address \"", address, "\": the host must be a numeric IPv4 or IPv6 address"));
  }
  if (ipv6 && mg_check_feature(8) == 0) {  // 8: IPv6 support compiled in.
    return absl::InvalidArgumentError(
        absl::StrCat("metrics address \"", address, "\": this civetweb build has no IPv6"));
  }
  return parsed;
}

// Where a connection reaches the listener bound to `host`:`port`: the host itself, or loopback
// for a wildcard host.
std::pair<sockaddr_storage, socklen_t> OwnListenerAddress(const std::string& host, uint16_t port) {
  sockaddr_storage storage{};
  sockaddr_in ipv4{.sin_family = AF_INET, .sin_port = htons(port)};
  if (inet_pton(AF_INET, host.c_str(), &ipv4.sin_addr) == 1) {
    if (ipv4.sin_addr.s_addr == htonl(INADDR_ANY)) ipv4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    std::memcpy(&storage, &ipv4, sizeof(ipv4));
    return {storage, sizeof(ipv4)};
  }
  sockaddr_in6 ipv6{.sin6_family = AF_INET6, .sin6_port = htons(port)};
  const int parsed = inet_pton(AF_INET6, host.c_str(), &ipv6.sin6_addr);
  TB_ASSERT(parsed == 1, "the host was checked to be numeric");
  if (IN6_IS_ADDR_UNSPECIFIED(&ipv6.sin6_addr)) ipv6.sin6_addr = in6addr_loopback;
  std::memcpy(&storage, &ipv6, sizeof(ipv6));
  return {storage, sizeof(ipv6)};
}

// Only GET and HEAD are served; anything else is answered 405 without reading a body.
bool IsReadMethod(mg_connection* connection) {
  const mg_request_info* info = mg_get_request_info(connection);
  return info != nullptr && info->request_method != nullptr &&
         (std::strcmp(info->request_method, "GET") == 0 ||
          std::strcmp(info->request_method, "HEAD") == 0);
}

int Send(mg_connection* connection, int status, const char* content_type,
         const std::string& body) {
  mg_response_header_start(connection, status);
  mg_response_header_add(connection, "Content-Type", content_type, -1);
  mg_response_header_add(connection, "Cache-Control", "no-store", -1);
  const std::string length = std::to_string(body.size());
  mg_response_header_add(connection, "Content-Length", length.c_str(), -1);
  mg_response_header_send(connection);
  const mg_request_info* info = mg_get_request_info(connection);
  if (info == nullptr || std::strcmp(info->request_method, "HEAD") != 0) {
    mg_write(connection, body.data(), body.size());
  }
  return status;
}

int SendText(mg_connection* connection, int status, const std::string& body) {
  if (!IsReadMethod(connection)) {
    return Send(connection, 405, "text/plain; charset=utf-8", "method not allowed\n");
  }
  return Send(connection, status, "text/plain; charset=utf-8", body);
}

}  // namespace

MetricsHttpServer::MetricsHttpServer(Exposition exposition, Readiness readiness)
    : exposition_(std::move(exposition)), readiness_(std::move(readiness)) {}

absl::StatusOr<std::unique_ptr<MetricsHttpServer>> MetricsHttpServer::Start(
    const MetricsHttpOptions& options, Exposition exposition, Readiness readiness) {
  TB_ASSERT(exposition != nullptr);
  TB_ASSERT(readiness != nullptr);
  absl::StatusOr<HostPort> listen = ParseListenAddress(options.address);
  if (!listen.ok()) return listen.status();
  const std::string listening_port = HostPortToString(*listen);
  if (options.threads == 0 || options.threads > kMetricsHttpThreadsMax) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics threads must be 1..", kMetricsHttpThreadsMax));
  }
  std::unique_ptr<MetricsHttpServer> server(
      new MetricsHttpServer(std::move(exposition), std::move(readiness)));

  const std::string threads = std::to_string(options.threads);
  const char* civetweb_options[] = {"listening_ports", listening_port.c_str(),
                                    "num_threads",     threads.c_str(),
                                    "request_timeout_ms", "10000",
                                    nullptr};
  mg_callbacks callbacks{};
  // civetweb logs failures to stderr by default; the Status below carries them instead.
  callbacks.log_message = [](const mg_connection*, const char*) { return 1; };
  mg_init_library(0);
  server->context_ = mg_start(&callbacks, nullptr, civetweb_options);
  if (server->context_ == nullptr) {
    mg_exit_library();
    return absl::UnavailableError(
        absl::StrCat("cannot listen for metrics on ", options.address));
  }
  mg_set_request_handler(server->context_, "/metrics$", &HandleMetrics, server.get());
  mg_set_request_handler(server->context_, "/healthz$", &HandleHealth, server.get());
  mg_set_request_handler(server->context_, "/readyz$", &HandleReady, server.get());

  mg_server_port ports[1]{};
  if (mg_get_server_ports(server->context_, 1, ports) != 1 || ports[0].port <= 0) {
    return absl::UnavailableError("metrics listener has no port");
  }
  server->port_ = static_cast<uint16_t>(ports[0].port);
  std::tie(server->own_address_, server->own_address_length_) =
      OwnListenerAddress(listen->host, server->port_);
  return server;
}

// civetweb's listening thread looks at the stop flag only between polls of its socket, which
// last up to 2 s (its SOCKET_TIMEOUT_QUANTUM), and mg_stop waits for it: every shutdown took up
// to 2 s more. A connection to the listener ends the poll at once, so while mg_stop runs on
// another thread, this one connects now and then until it returns.
MetricsHttpServer::~MetricsHttpServer() {
  if (context_ == nullptr) return;
  absl::Notification stopped;
  std::thread stopper([this, &stopped] {
    mg_stop(context_);
    stopped.Notify();
  });
  while (!stopped.WaitForNotificationWithTimeout(kStopWakeInterval)) WakeListener();
  stopper.join();
  mg_exit_library();
}

void MetricsHttpServer::WakeListener() const {
  const int fd = socket(own_address_.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return;  // No descriptor free: the poll still ends within its 2 s.
  // Non-blocking: a listener that is already gone must not hold the destructor. The result
  // does not matter, only that the listener saw a connection.
  (void)connect(fd, reinterpret_cast<const sockaddr*>(&own_address_), own_address_length_);
  close(fd);
}

int MetricsHttpServer::HandleMetrics(mg_connection* connection, void* server) {
  auto* self = static_cast<MetricsHttpServer*>(server);
  if (!IsReadMethod(connection)) return SendText(connection, 405, "");
  const std::string body = self->exposition_();
  return Send(connection, 200, "text/plain; version=0.0.4; charset=utf-8", body);
}

int MetricsHttpServer::HandleHealth(mg_connection* connection, void* server) {
  return SendText(connection, 200, "ok\n");
}

int MetricsHttpServer::HandleReady(mg_connection* connection, void* server) {
  auto* self = static_cast<MetricsHttpServer*>(server);
  return self->readiness_() ? SendText(connection, 200, "ready\n")
                            : SendText(connection, 503, "not ready\n");
}

}  // namespace tb::proxy
