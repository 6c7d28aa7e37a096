#include "proxy/app/embedded_cluster.h"

#include <chrono>
#include <optional>
#include <pthread.h>

#include <thread>

#include "asio.hpp"
#include "absl/time/clock.h"
#include "client_core/assert.h"
#include "devcluster/server.h"
#include "devcluster/state_machine.h"

namespace tb::proxy {

struct EmbeddedCluster::Parts {
  asio::io_context io_context{1};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  devcluster::StateMachine machine{devcluster::StateMachineOptions{}};
  std::unique_ptr<devcluster::Server> server;
  asio::steady_timer tick_timer{io_context};
  std::thread thread;
  bool stopped = false;

  // The replica's idle timer (expires pending transfers while no request arrives), as the
  // dev cluster's own binary runs it.
  void ScheduleTick() {
    tick_timer.expires_after(std::chrono::milliseconds(100));
    tick_timer.async_wait([this](asio::error_code error) {
      if (error) return;
      machine.Tick(static_cast<uint64_t>(absl::GetCurrentTimeNanos()));
      ScheduleTick();
    });
  }
};

absl::StatusOr<std::unique_ptr<EmbeddedCluster>> EmbeddedCluster::Start(u128 cluster_id) {
  auto parts = std::make_unique<Parts>();
  devcluster::ServerOptions options;
  options.addresses = {{"127.0.0.1", 0}};
  options.protocol.cluster = cluster_id;
  options.protocol.replica_count = 1;
  if (absl::Status valid = devcluster::ValidateServerOptions(options); !valid.ok()) return valid;
  parts->server = std::make_unique<devcluster::Server>(parts->io_context, &parts->machine, options);
  if (absl::Status started = parts->server->Start(); !started.ok()) return started;
  parts->work.emplace(parts->io_context.get_executor());
  parts->ScheduleTick();
  Parts* raw = parts.get();
  parts->thread = std::thread([raw] {
    pthread_setname_np(pthread_self(), "tb-devcluster");
    raw->io_context.run();
  });
  return std::unique_ptr<EmbeddedCluster>(new EmbeddedCluster(std::move(parts)));
}

EmbeddedCluster::EmbeddedCluster(std::unique_ptr<Parts> parts) : parts_(std::move(parts)) {}

EmbeddedCluster::~EmbeddedCluster() { Stop(); }

std::vector<ReplicaAddress> EmbeddedCluster::addresses() const {
  std::vector<ReplicaAddress> addresses;
  for (uint16_t port : parts_->server->ports()) addresses.push_back({"127.0.0.1", port});
  return addresses;
}

void EmbeddedCluster::Stop() {
  if (parts_->stopped) return;
  parts_->stopped = true;
  parts_->server->Stop();  // Runs on the io thread and returns when done.
  asio::post(parts_->io_context, [raw = parts_.get()] { raw->tick_timer.cancel(); });
  parts_->work.reset();
  parts_->io_context.stop();
  parts_->thread.join();
  parts_->server.reset();
}

}  // namespace tb::proxy
