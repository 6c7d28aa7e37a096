// A dev cluster Server on its own io_context thread, for tests: Start() binds ephemeral ports
// (by default) and runs the io_context; Stop(), or the destructor, stops the server and joins.
//
//   tb::replica::EchoExecutor executor;              // Declared first: outlives the server.
//   tb::devcluster::testing::RunningServer cluster;
//   ASSERT_TRUE(cluster.Start(&executor, {}).ok());
//   TcpClient tcp(cluster.port());  ...  cluster.server().stats();
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <thread>
#include <utility>

#include "absl/status/status.h"
#include "asio.hpp"
#include "client_core/assert.h"
#include "client_core/status_macros.h"
#include "devcluster/server.h"
#include "devcluster/server_options.h"

namespace tb::devcluster::testing {

class RunningServer {
 public:
  RunningServer() = default;
  ~RunningServer() { Stop(); }
  RunningServer(const RunningServer&) = delete;
  RunningServer& operator=(const RunningServer&) = delete;

  // Validates `options`, starts the server and its thread. Call once. `executor` is not owned
  // and must outlive this object.
  absl::Status Start(Executor* executor, ServerOptions options = {}) {
    TB_ASSERT(server_ == nullptr, "Start() is called once");
    TB_RETURN_IF_ERROR(ValidateServerOptions(options));
    server_ = std::make_unique<Server>(io_context_, executor, std::move(options));
    if (absl::Status started = server_->Start(); !started.ok()) {
      server_.reset();  // Stopped by its destructor, as no thread runs the io_context yet.
      return started;
    }
    thread_ = std::thread([this] { io_context_.run(); });
    return absl::OkStatus();
  }
  // Stops the server and joins its thread. Idempotent.
  void Stop() {
    if (server_ != nullptr) server_->Stop();
    io_context_.stop();
    if (thread_.joinable()) thread_.join();
    server_.reset();
  }

  Server& server() {
    TB_ASSERT(server_ != nullptr);
    return *server_;
  }
  uint16_t port(size_t replica = 0) const { return server_->ports().at(replica); }

 private:
  asio::io_context io_context_;
  std::unique_ptr<Server> server_;
  std::thread thread_;
};

}  // namespace tb::devcluster::testing
