// Test fixture pieces: a GrpcService over a FakeSubmitter, served on 127.0.0.1:0.
#pragma once

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "client_core/assert.h"
#include "grpcpp/grpcpp.h"
#include "proxy/grpc/grpc_server.h"
#include "proxy/grpc/grpc_service.h"
#include "proxy/testing/fake_submitter.h"
#include "tbproxy/v1/tbproxy.grpc.pb.h"

namespace tb::proxy::testing {

struct TestServer {
  explicit TestServer(GrpcServiceOptions service_options = {},
                      GrpcServerOptions server_options = DefaultServerOptions())
      : service(submitter, service_options) {
    absl::StatusOr<std::unique_ptr<GrpcServer>> started =
        GrpcServer::Start(server_options, &service);
    TB_ASSERT(started.ok(), "the test server must start");
    server = *std::move(started);
  }
  ~TestServer() { server->Shutdown(absl::Now()); }

  static GrpcServerOptions DefaultServerOptions() {
    GrpcServerOptions options;
    options.listen_address = "127.0.0.1:0";
    return options;
  }

  std::string address() const { return absl::StrCat("127.0.0.1:", server->port()); }

  std::unique_ptr<::tbproxy::v1::TigerBeetle::Stub> NewStub(
      std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials(),
      grpc::ChannelArguments arguments = {}) const {
    arguments.SetMaxReceiveMessageSize(64 * 1024 * 1024);
    return ::tbproxy::v1::TigerBeetle::NewStub(
        grpc::CreateCustomChannel(address(), credentials, arguments));
  }

  FakeSubmitter submitter;
  GrpcService service;
  std::unique_ptr<GrpcServer> server;
};

}  // namespace tb::proxy::testing
