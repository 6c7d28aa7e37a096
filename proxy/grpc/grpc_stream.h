// The bidirectional Stream RPC of the gRPC front end: many calls pipelined on one stream,
// answered by correlation id, with at most `calls_max` calls outstanding (beyond that the
// stream is not read, and HTTP/2 flow control pushes back on the client).
//
//   return NewStreamCall(submitter, context, {.calls_max = 64, .ordering_key = key}, *slot);
#pragma once

#include <cstdint>

#include "grpcpp/grpcpp.h"
#include "proxy/grpc/call_memory.h"
#include "proxy/grpc/grpc_auth.h"
#include "proxy/grpc/grpc_drain.h"
#include "proxy/grpc/stream_rpc_limit.h"
#include "proxy/submitter.h"
#include "tbproxy/v1/tbproxy.pb.h"

namespace tb::proxy {

struct StreamCallOptions {
  uint32_t calls_max = 64;     // Calls submitted or answered and not yet written. Above 0.
  uint64_t ordering_key = 0;   // Every call of the stream carries it; 0 = unordered.
  Permission permission = Permission::kWrite;  // The authenticated caller's.
  // Null: never drained. Otherwise the stream registers there; once the drain begins it reads
  // no more requests and, when its calls are answered, finishes UNAVAILABLE (not_applied: what
  // it did not read was not submitted). A stream the client half-closed finishes OK as usual.
  GrpcDrain* drain = nullptr;
  // Null: calls reserve no memory. Otherwise each call reserves its CallMemoryBound before it is
  // submitted (or is answered RESOURCE_EXHAUSTED, not_applied, in its CallError) and keeps it
  // until its response is written.
  CallMemoryBudget* call_memory = nullptr;
};

// A reactor for one stream, owned by gRPC (it deletes itself when the stream is done).
// `submitter` must outlive it. It holds `slot` (may be empty) until just before it finishes.
// Called on a gRPC thread from the service's Stream handler.
grpc::ServerBidiReactor<::tbproxy::v1::StreamRequest, ::tbproxy::v1::StreamResponse>*
NewStreamCall(Submitter& submitter, grpc::CallbackServerContext* context,
              StreamCallOptions options, StreamRpcSlot slot);

}  // namespace tb::proxy
