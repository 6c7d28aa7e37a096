// The Stream RPC's handler (proxy/grpc/grpc_service.h): the checks a new stream passes before it
// gets its reactor (proxy/grpc/grpc_stream.h).
#pragma once

#include <atomic>
#include <cstdint>

#include "grpcpp/grpcpp.h"
#include "proxy/grpc/grpc_service.h"
#include "proxy/grpc/stream_rpc_limit.h"
#include "proxy/submitter.h"
#include "tbproxy/v1/tbproxy.pb.h"

namespace tb::proxy::internal {

// Authenticates the stream, reads its "tbproxy-ordering" metadata and takes a place under
// `limit`, then returns its reactor, or one that refuses it (UNAVAILABLE, not_applied, once
// `drain` has begun; RESOURCE_EXHAUSTED, not_applied, with `limit` full). The place is taken
// last, so a stream refused for another reason never holds one. `ordering_key_next` numbers the
// service's streams; `submitter`, `options.authenticator`, `drain` and `limit` must outlive the
// stream (null `drain`: no drain), and so must `call_memory`, which the stream's calls reserve
// from. Runs on a gRPC thread.
grpc::ServerBidiReactor<::tbproxy::v1::StreamRequest, ::tbproxy::v1::StreamResponse>* OpenStream(
    Submitter& submitter, const GrpcServiceOptions& options,
    std::atomic<uint64_t>& ordering_key_next, GrpcDrain* drain, StreamRpcLimit& limit,
    CallMemoryBudget& call_memory, grpc::CallbackServerContext* context);

}  // namespace tb::proxy::internal
