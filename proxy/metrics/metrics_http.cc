#include "proxy/metrics/metrics_http.h"

#include <arpa/inet.h>
#include <civetweb.h>

#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client_core/assert.h"
#include "client_core/parse.h"

namespace tb::proxy {
namespace {

// civetweb's listening_ports text for `address` ("1.2.3.4:80", "[::1]:80"). civetweb binds only
// numeric addresses and would otherwise log and fail obscurely.
absl::StatusOr<std::string> ListeningPort(const std::string& address) {
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
  return HostPortToString(*parsed);
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
  absl::StatusOr<std::string> listening_port = ListeningPort(options.address);
  if (!listening_port.ok()) return listening_port.status();
  if (options.threads == 0 || options.threads > kMetricsHttpThreadsMax) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics threads must be 1..", kMetricsHttpThreadsMax));
  }
  std::unique_ptr<MetricsHttpServer> server(
      new MetricsHttpServer(std::move(exposition), std::move(readiness)));

  const std::string threads = std::to_string(options.threads);
  const char* civetweb_options[] = {"listening_ports", listening_port->c_str(),
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
  return server;
}

MetricsHttpServer::~MetricsHttpServer() {
  if (context_ != nullptr) {
    mg_stop(context_);
    mg_exit_library();
  }
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
