// The dev cluster's TCP server: one listener per replica, framing with strict size checks, a
// bounded number of connections per replica and a bounded output queue per connection
// (client_core/replica/ReplicaListener and ReplicaConnection), all driven by a ReplicaProtocol. Runs on a caller-owned asio::io_context with one thread, so
// tbproxy can embed it in-process; asio itself stays out of this header.
//
// Fault injection for tests (all settable at run time): reply delay, replies dropped with a
// probability, connections reset with a probability per received message, pause (every
// message is dropped unread, as by a stalled cluster), reset of every connection at once, and
// view changes that move the primary. A cost model of a real cluster's pipeline (prepares in
// flight, request queue, commit latency; FaultOptions::pipeline, prepare_pipeline.h) is set
// along with them.
//
//   asio::io_context io;
//   tb::replica::EchoExecutor executor;
//   tb::devcluster::Server server(io, &executor, {.addresses = {{"127.0.0.1", 0}}});
//   TB_RETURN_IF_ERROR(server.Start());
//   std::thread thread([&] { io.run(); });   // ... server.Stop(); io.stop(); thread.join();
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "client_core/replica/executor.h"
#include "client_core/replica/replica_protocol.h"
#include "devcluster/server_options.h"

namespace asio {
class io_context;
}  // namespace asio

namespace tb::devcluster {

class Server {
 public:
  // `io_context` and `executor` are not owned and must outlive the server. `options` must be
  // valid (asserted; check with ValidateServerOptions first).
  Server(asio::io_context& io_context, Executor* executor, ServerOptions options);
  // Closes everything. Destroy on the io_context's thread or while no thread runs it.
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and listens on every address and starts accepting; the io_context must then be run.
  // Call once, before running the io_context or on its thread.
  absl::Status Start();
  // The bound ports, in replica order (after Start()).
  std::vector<uint16_t> ports() const;
  // "127.0.0.1:41234,127.0.0.1:41235": the bound addresses, usable as a client's address list.
  std::string ListeningAddresses() const;

  // The methods below may be called from any thread: they run on the io_context's thread and
  // return when done (so the io_context must be running, unless called on its thread or after
  // it stopped).

  // Stops accepting, closes every connection and cancels delayed replies. Idempotent.
  void Stop();
  void SetView(uint32_t view);  // Views only grow.
  void AdvanceView();           // view + 1: the next replica becomes primary.
  uint32_t view();
  void SetFaults(const FaultOptions& faults);  // Asserted valid.
  void Pause();
  void Resume();
  void ResetConnections();  // Closes every client connection now (sessions survive).
  ServerStats stats();

 private:
  class Impl;
  std::shared_ptr<Impl> impl_;  // Shared with pending asio handlers, which may outlive Stop().
};

}  // namespace tb::devcluster
