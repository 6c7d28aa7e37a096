// The tbproxy.v1.TigerBeetle service with its unary methods on gRPC's asynchronous
// completion-queue API (--grpc-server-api=cq); its Stream RPC stays on the callback API.
//
// The calls behave as GrpcService's (proxy/grpc/grpc_service.h): the same checks, ordering keys,
// deadlines, answers and CANCELLED for a call the client cancels, from the same shared functions
// (proxy/grpc/internal/grpc_call.h). What differs is who runs them: one completion queue and one
// polling thread per CPU, instead of gRPC's callback threads and executor. Every queue holds
// kCallsPostedPerMethod requests of each unary method, and a polling thread re-posts one as it
// takes each call, so the calls in flight are bounded only by the submitter's admission
// (callers_max), as with the callback API. Answers are finished on the thread that runs the
// submitter's callback (the pool's I/O thread), which the completion-queue API allows.
//
//   GrpcCqService service(submitter, {.authenticator = &tokens});
//   TB_ASSIGN_OR_RETURN(auto server, GrpcServer::Start(options, &service, &service));
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "grpcpp/grpcpp.h"
#include "proxy/grpc/grpc_cq_driver.h"
#include "proxy/grpc/grpc_service.h"
#include "proxy/submitter.h"
#include "tbproxy/v1/tbproxy.grpc.pb.h"

namespace tb::proxy {

namespace internal {
using TigerBeetle = ::tbproxy::v1::TigerBeetle;
// Every unary method asynchronous, Stream on the callback API.
using CqServiceBase = TigerBeetle::WithAsyncMethod_CreateAccounts<
    TigerBeetle::WithAsyncMethod_CreateTransfers<TigerBeetle::WithAsyncMethod_LookupAccounts<
        TigerBeetle::WithAsyncMethod_LookupTransfers<TigerBeetle::WithAsyncMethod_GetAccountTransfers<
            TigerBeetle::WithAsyncMethod_GetAccountBalances<TigerBeetle::WithAsyncMethod_QueryAccounts<
                TigerBeetle::WithAsyncMethod_QueryTransfers<TigerBeetle::WithAsyncMethod_GetChangeEvents<
                    TigerBeetle::WithAsyncMethod_Raw<
                        TigerBeetle::WithCallbackMethod_Stream<TigerBeetle::Service>>>>>>>>>>>;
}  // namespace internal

class GrpcCqService final : public internal::CqServiceBase, public CompletionQueueDriver {
 public:
  // Queues (and polling threads) at most, whatever the CPU count.
  static constexpr unsigned kQueuesMax = 16;

  // `submitter` must outlive the service and the server it is registered with.
  GrpcCqService(Submitter& submitter, GrpcServiceOptions options);
  ~GrpcCqService() override;  // Stops the queues if the server has not.

  void AddQueues(grpc::ServerBuilder& builder) override;
  void Start() override;
  void Stop() override;

  grpc::ServerBidiReactor<::tbproxy::v1::StreamRequest, ::tbproxy::v1::StreamResponse>* Stream(
      grpc::CallbackServerContext* context) override;

  // What every call of the service reads; set once, at construction.
  struct CallEnvironment {
    GrpcCqService* service;
    Submitter* submitter;
    const TokenAuthenticator* authenticator;
  };

 private:
  void PostAll(grpc::ServerCompletionQueue* queue);

  Submitter& submitter_;
  const GrpcServiceOptions options_;
  const CallEnvironment environment_;
  std::atomic<uint64_t> stream_ordering_key_next_{1};
  std::vector<std::unique_ptr<grpc::ServerCompletionQueue>> queues_;
  std::vector<std::thread> threads_;  // threads_[i] polls queues_[i].
  bool stopped_ = false;
};

}  // namespace tb::proxy
