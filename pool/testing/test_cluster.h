// An in-process dev cluster for SessionPool tests: devcluster::Server with the echo executor on
// 127.0.0.1 ephemeral ports, on its own I/O thread, stopped on destruction.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "client_core/constants.h"
#include "client_core/release.h"
#include "client_core/tcp_transport.h"
#include "client_core/replica/echo_executor.h"
#include "devcluster/server.h"
#include "gtest/gtest.h"
#include "pool/testing/recording.h"

namespace tb::pool::testing {

struct TestClusterOptions {
  uint8_t replica_count = 1;
  uint32_t clients_max = kClientsMaxDefault;
  uint32_t batch_size_limit = kBatchSizeLimitMax;
  uint32_t release_client_min = kReleaseClientMin;
};

class TestCluster {
 public:
  explicit TestCluster(TestClusterOptions options) {
    devcluster::ServerOptions server_options;
    server_options.addresses.assign(options.replica_count, {"127.0.0.1", 0});
    server_options.protocol.cluster = kCluster;
    server_options.protocol.replica_count = options.replica_count;
    server_options.protocol.clients_max = options.clients_max;
    server_options.protocol.batch_size_limit = options.batch_size_limit;
    server_options.protocol.release_client_min = options.release_client_min;
    absl::Status valid = devcluster::ValidateServerOptions(server_options);
    EXPECT_TRUE(valid.ok()) << valid;
    server_ = std::make_unique<devcluster::Server>(io_.io_context(), &executor_, server_options);
    // Start() must run on the server's thread once that thread runs.
    io_.RunAndWait([this] {
      absl::Status started = server_->Start();
      EXPECT_TRUE(started.ok()) << started;
    });
  }

  ~TestCluster() {
    server_->Stop();
    io_.Stop();
    server_.reset();
  }

  u128 cluster() const { return kCluster; }

  std::vector<ReplicaAddress> addresses() const {
    std::vector<ReplicaAddress> addresses;
    for (uint16_t port : server_->ports()) addresses.push_back({"127.0.0.1", port});
    return addresses;
  }

  uint32_t view() { return server_->view(); }

  // The next replica becomes primary and every client connection is cut, as when a primary
  // dies: clients must reconnect, resend and follow the new view.
  void ChangePrimary() {
    server_->AdvanceView();
    server_->ResetConnections();
  }

  devcluster::Server& server() { return *server_; }

 private:
  static constexpr u128 kCluster = 0x5eed;
  IoThread io_;
  replica::EchoExecutor executor_;
  std::unique_ptr<devcluster::Server> server_;
};

}  // namespace tb::pool::testing
