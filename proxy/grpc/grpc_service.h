// The gRPC front end: the tbproxy.v1.TigerBeetle service on gRPC's callback API.
//
// Every handler validates and converts the request (proxy/grpc/grpc_convert.h), calls
// Submitter::Submit with the call's deadline, and returns its reactor at once; the reactor
// finishes from the submitter's callback. Nothing blocks a gRPC thread. A call the client
// cancels is answered CANCELLED at once; its batch may still be applied (as with any request
// that has left the caller).
//
// Streams: each stream is one ordering key (its calls apply in the order they were read) unless
// opened with metadata "tbproxy-ordering: none". A stream holds at most `stream_calls_max`
// calls in flight or waiting to be written; beyond that the service stops reading the stream
// until one completes (HTTP/2 flow control then pushes back on the client). At most
// `stream_rpcs_max` streams are open at once; one more is refused RESOURCE_EXHAUSTED.
//
// Memory: every call, unary or on a stream, reserves a bound on what it may hold from before it
// is submitted until gRPC is done with it (its response sent), under `call_memory_max`
// (proxy/grpc/call_memory.h); a call that does not fit is refused RESOURCE_EXHAUSTED, so
// clients that do not read their responses cannot make tbproxy hold them without bound.
//
// Drain: once drain().Begin() has run, every new call is refused UNAVAILABLE with outcome
// not_applied and open streams finish (proxy/grpc/grpc_drain.h); main drives the drain.
//
// Unary calls are unordered unless they carry metadata "tbproxy-ordering-key: <name>": calls
// with the same name (from any client) apply in the order tbproxy received them, as one
// stream's calls do. Names are 1..kOrderingKeyNameBytesMax bytes.
//
//   GrpcService service(coalescer, {.stream_calls_max = 64, .authenticator = &tokens});
//   builder.RegisterService(&service);
#pragma once

#include <atomic>
#include <cstdint>

#include "grpcpp/grpcpp.h"
#include "proxy/constants.h"
#include "proxy/grpc/call_memory.h"
#include "proxy/grpc/grpc_auth.h"
#include "proxy/grpc/grpc_drain.h"
#include "proxy/grpc/stream_rpc_limit.h"
#include "proxy/submitter.h"
#include "tbproxy/v1/tbproxy.grpc.pb.h"

namespace tb::proxy {

struct GrpcServiceOptions {
  // Per stream: calls in flight plus responses not yet written; 1..kStreamCallsMaxCeiling.
  uint32_t stream_calls_max = 64;
  // Stream RPCs open at once over all clients; 1..kStreamRpcsMaxCeiling. One more is refused
  // RESOURCE_EXHAUSTED with outcome not_applied.
  uint32_t stream_rpcs_max = kStreamRpcsMaxDefault;
  // Bytes that calls not yet done may hold (CallMemoryBudget), unary and Stream calls together;
  // a call that does not fit is refused RESOURCE_EXHAUSTED with outcome not_applied.
  uint64_t call_memory_max = kGrpcCallMemoryMaxDefault;
  // Null: no authentication. Otherwise every call needs a known bearer token, and creates need
  // a token with write permission. Must outlive the service.
  const TokenAuthenticator* authenticator = nullptr;
};

inline constexpr char kOrderingMetadataKey[] = "tbproxy-ordering";
inline constexpr char kOrderingKeyMetadataKey[] = "tbproxy-ordering-key";
// Ordering keys of streams are kStreamOrderingKeyTag | n, n = 1, 2, ... per stream opened.
inline constexpr uint64_t kStreamOrderingKeyTag = uint64_t{1} << 63;

class GrpcService final : public ::tbproxy::v1::TigerBeetle::CallbackService {
 public:
  // `submitter` must outlive the service and the server it is registered with.
  GrpcService(Submitter& submitter, GrpcServiceOptions options);

  grpc::ServerUnaryReactor* CreateAccounts(grpc::CallbackServerContext* context,
                                           const ::tbproxy::v1::CreateAccountsRequest* request,
                                           ::tbproxy::v1::CreateAccountsResponse* response) override;
  grpc::ServerUnaryReactor* CreateTransfers(
      grpc::CallbackServerContext* context, const ::tbproxy::v1::CreateTransfersRequest* request,
      ::tbproxy::v1::CreateTransfersResponse* response) override;
  grpc::ServerUnaryReactor* LookupAccounts(grpc::CallbackServerContext* context,
                                           const ::tbproxy::v1::LookupAccountsRequest* request,
                                           ::tbproxy::v1::LookupAccountsResponse* response) override;
  grpc::ServerUnaryReactor* LookupTransfers(
      grpc::CallbackServerContext* context, const ::tbproxy::v1::LookupTransfersRequest* request,
      ::tbproxy::v1::LookupTransfersResponse* response) override;
  grpc::ServerUnaryReactor* GetAccountTransfers(
      grpc::CallbackServerContext* context,
      const ::tbproxy::v1::GetAccountTransfersRequest* request,
      ::tbproxy::v1::GetAccountTransfersResponse* response) override;
  grpc::ServerUnaryReactor* GetAccountBalances(
      grpc::CallbackServerContext* context,
      const ::tbproxy::v1::GetAccountBalancesRequest* request,
      ::tbproxy::v1::GetAccountBalancesResponse* response) override;
  grpc::ServerUnaryReactor* QueryAccounts(grpc::CallbackServerContext* context,
                                          const ::tbproxy::v1::QueryAccountsRequest* request,
                                          ::tbproxy::v1::QueryAccountsResponse* response) override;
  grpc::ServerUnaryReactor* QueryTransfers(grpc::CallbackServerContext* context,
                                           const ::tbproxy::v1::QueryTransfersRequest* request,
                                           ::tbproxy::v1::QueryTransfersResponse* response) override;
  grpc::ServerUnaryReactor* GetChangeEvents(
      grpc::CallbackServerContext* context, const ::tbproxy::v1::GetChangeEventsRequest* request,
      ::tbproxy::v1::GetChangeEventsResponse* response) override;
  grpc::ServerUnaryReactor* Raw(grpc::CallbackServerContext* context,
                                const ::tbproxy::v1::RawRequest* request,
                                ::tbproxy::v1::RawResponse* response) override;
  grpc::ServerBidiReactor<::tbproxy::v1::StreamRequest, ::tbproxy::v1::StreamResponse>* Stream(
      grpc::CallbackServerContext* context) override;

  // The drain of this service's calls; any thread (see grpc_drain.h for the order).
  GrpcDrain& drain() { return drain_; }
  // Open Stream RPCs and refusals, for metrics; any thread.
  const StreamRpcLimit& stream_rpcs() const { return stream_rpcs_; }
  // Memory reserved by calls not yet done, and refusals, for metrics; any thread.
  const CallMemoryBudget& call_memory() const { return call_memory_; }

 private:
  template <typename Request, typename Response>
  grpc::ServerUnaryReactor* HandleUnary(grpc::CallbackServerContext* context,
                                        const Request& request, Response* response);

  Submitter& submitter_;
  const GrpcServiceOptions options_;
  std::atomic<uint64_t> stream_ordering_key_next_{1};
  GrpcDrain drain_;
  StreamRpcLimit stream_rpcs_;
  CallMemoryBudget call_memory_;
};

}  // namespace tb::proxy
