// Test fixture pieces: a gRPC service over a FakeSubmitter, served on 127.0.0.1:0.
//
// The service is GrpcService (gRPC's callback API) unless the environment variable
// TBPROXY_TEST_GRPC_SERVER_API is "cq": then it is GrpcCqService (the completion-queue API).
// ctest runs each gRPC front-end test binary both ways (proxy/grpc/CMakeLists.txt).
#pragma once

#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "client_core/assert.h"
#include "grpcpp/grpcpp.h"
#include "proxy/grpc/grpc_cq_service.h"
#include "proxy/grpc/grpc_server.h"
#include "proxy/grpc/grpc_service.h"
#include "proxy/testing/fake_submitter.h"
#include "tbproxy/v1/tbproxy.grpc.pb.h"

namespace tb::proxy::testing {

// Whether this test run serves the completion-queue service.
inline bool TestServerUsesCompletionQueues() {
  const char* api = std::getenv("TBPROXY_TEST_GRPC_SERVER_API");
  return api != nullptr && std::string_view(api) == "cq";
}

struct TestServer {
  explicit TestServer(GrpcServiceOptions service_options = {},
                      GrpcServerOptions server_options = DefaultServerOptions()) {
    if (TestServerUsesCompletionQueues()) {
      auto cq_service = std::make_unique<GrpcCqService>(submitter, service_options);
      driver = cq_service.get();
      service = std::move(cq_service);
    } else {
      service = std::make_unique<GrpcService>(submitter, service_options);
    }
    absl::StatusOr<std::unique_ptr<GrpcServer>> started =
        GrpcServer::Start(server_options, service.get(), driver);
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
  std::unique_ptr<grpc::Service> service;  // GrpcService or GrpcCqService.
  CompletionQueueDriver* driver = nullptr;  // The GrpcCqService, when it is the service.
  std::unique_ptr<GrpcServer> server;
};

}  // namespace tb::proxy::testing
