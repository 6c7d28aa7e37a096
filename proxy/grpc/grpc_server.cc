#include "proxy/grpc/grpc_server.h"

#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "client_core/assert.h"
#include "client_core/parse.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/security/server_credentials.h"

namespace tb::proxy {
namespace {

constexpr size_t kPemFileSizeMax = 1024 * 1024;

absl::StatusOr<std::string> ReadPemFile(const std::string& path, absl::string_view setting) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return absl::InvalidArgumentError(absl::StrCat(setting, ": cannot open ", path));
  std::string text(kPemFileSizeMax + 1, '\0');
  file.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(file.gcount()));
  if (text.empty() || text.size() > kPemFileSizeMax) {
    return absl::InvalidArgumentError(absl::StrCat(setting, ": ", path, " is empty or too big"));
  }
  // Never echo the content: the key file holds a secret.
  if (text.find("-----BEGIN") == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(setting, ": ", path, " is not PEM"));
  }
  return text;
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeCredentials(
    const GrpcTlsOptions& tls) {
  if (tls.certificate_file.empty()) {
    if (!tls.private_key_file.empty() || !tls.client_ca_file.empty()) {
      return absl::InvalidArgumentError("tls-cert-file: required with a key or client CA");
    }
    return grpc::InsecureServerCredentials();
  }
  grpc::SslServerCredentialsOptions ssl;
  grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
  auto certificate = ReadPemFile(tls.certificate_file, "tls-cert-file");
  if (!certificate.ok()) return certificate.status();
  auto key = ReadPemFile(tls.private_key_file, "tls-key-file");
  if (!key.ok()) return key.status();
  pair.cert_chain = *std::move(certificate);
  pair.private_key = *std::move(key);
  ssl.pem_key_cert_pairs.push_back(std::move(pair));
  if (!tls.client_ca_file.empty()) {
    auto ca = ReadPemFile(tls.client_ca_file, "tls-client-ca-file");
    if (!ca.ok()) return ca.status();
    ssl.pem_root_certs = *std::move(ca);
    ssl.client_certificate_request = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  } else {
    ssl.client_certificate_request = GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE;
  }
  return grpc::SslServerCredentials(ssl);
}

int Milliseconds(absl::Duration duration) {
  return static_cast<int>(std::min<int64_t>(absl::ToInt64Milliseconds(duration), INT32_MAX));
}

}  // namespace

absl::StatusOr<std::unique_ptr<GrpcServer>> GrpcServer::Start(const GrpcServerOptions& options,
                                                              grpc::Service* service) {
  TB_ASSERT(service != nullptr);
  auto credentials = MakeCredentials(options.tls);
  if (!credentials.ok()) return credentials.status();

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();

  absl::StatusOr<HostPort> address =
      ParseHostPort(options.listen_address, {.port_zero_allowed = true});
  if (!address.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("listen: ", address.status().message()));
  }
  // tbproxy accepts connections itself to bound their count; gRPC serves them.
  absl::StatusOr<std::unique_ptr<GrpcListener>> listener = GrpcListener::Listen(
      {.host = address->host,
       .port = address->port,
       .connections_max = options.connections_max,
       .tcp_user_timeout = options.keepalive_timeout});
  if (!listener.ok()) {
    return absl::Status(listener.status().code(),
                        absl::StrCat("listen: ", listener.status().message()));
  }

  std::unique_ptr<GrpcServer> server(new GrpcServer());
  grpc::ServerBuilder builder;
  server->acceptor_ = builder.experimental().AddExternalConnectionAcceptor(
      grpc::ServerBuilder::experimental_type::ExternalConnectionType::FROM_FD, *credentials);
  builder.RegisterService(service);
  builder.SetMaxReceiveMessageSize(options.message_size_max_bytes);
  builder.SetMaxSendMessageSize(options.message_size_max_bytes);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, options.streams_max);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, Milliseconds(options.keepalive_time));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
                             Milliseconds(options.keepalive_timeout));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
                             Milliseconds(options.client_ping_interval_min));
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 2);
  // tbproxy serves no channelz service; its per-call counters only cost CPU on the call path.
  builder.AddChannelArgument(GRPC_ARG_ENABLE_CHANNELZ, 0);
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("listen: gRPC cannot serve on ", options.listen_address));
  }
  server->listener_ = *std::move(listener);
  server->port_ = server->listener_->port();
  server->listener_->Start([acceptor = server->acceptor_.get()](int fd, int listener_fd) {
    grpc::experimental::ExternalConnectionAcceptor::NewConnectionParameters connection;
    connection.listener_fd = listener_fd;
    connection.fd = fd;
    acceptor->HandleNewConnection(&connection);  // gRPC owns `fd` from here on.
  });
  server->readiness_ = options.readiness;
  server->readiness_poll_interval_ = options.readiness_poll_interval;
  grpc::HealthCheckServiceInterface* health = server->server_->GetHealthCheckService();
  TB_ASSERT(health != nullptr);
  const bool ready = server->readiness_ == nullptr || server->readiness_();
  health->SetServingStatus(ready);
  if (server->readiness_ != nullptr) {
    server->readiness_thread_ = std::thread([raw = server.get(), ready] {
      pthread_setname_np(pthread_self(), "tb-grpc-ready");
      raw->PollReadiness(ready);
    });
  }
  return server;
}

void GrpcServer::PollReadiness(bool serving) {
  grpc::HealthCheckServiceInterface* health = server_->GetHealthCheckService();
  while (!stopping_.WaitForNotificationWithTimeout(readiness_poll_interval_)) {
    const bool ready = readiness_();
    // gRPC sends every SetServingStatus to every Health/Watch stream, changed or not; a watcher
    // must hear of changes only.
    if (ready == serving) continue;
    serving = ready;
    health->SetServingStatus(ready);
  }
}

void GrpcServer::StopServing() {
  if (serving_stopped_) return;
  serving_stopped_ = true;
  stopping_.Notify();
  if (readiness_thread_.joinable()) readiness_thread_.join();
  server_->GetHealthCheckService()->SetServingStatus(false);
}

void GrpcServer::Shutdown(absl::Time deadline) {
  if (shut_down_) return;
  shut_down_ = true;
  // Health checks answer NOT_SERVING while the server drains.
  StopServing();
  listener_->Stop();  // As gRPC's own listener would: no new connections from here on.
  server_->Shutdown(absl::ToChronoTime(deadline));
  server_->Wait();
}

GrpcServer::~GrpcServer() {
  if (server_ != nullptr) Shutdown(absl::Now());
}

}  // namespace tb::proxy
