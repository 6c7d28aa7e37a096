// The part of a gRPC service on the completion-queue API that GrpcServer runs: the service owns
// its queues and polling threads, and the server tells it when to add, start and stop them.
//
//   auto server = GrpcServer::Start(options, &service, &service);  // service is both.
#pragma once

namespace grpc {
class ServerBuilder;
}  // namespace grpc

namespace tb::proxy {

class CompletionQueueDriver {
 public:
  virtual ~CompletionQueueDriver() = default;
  // Before the server is built: adds the queues to `builder`. Called once.
  virtual void AddQueues(grpc::ServerBuilder& builder) = 0;
  // Once the server has started: posts the first requests and starts polling.
  virtual void Start() = 0;
  // Once the server has shut down (every call is done): shuts the queues down, drains them and
  // joins the polling threads. Also safe when Start never ran.
  virtual void Stop() = 0;
};

}  // namespace tb::proxy
