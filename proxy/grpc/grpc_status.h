// The one place where an absl::Status (with its Outcome payload) becomes a gRPC status.
//
// Codes map one to one (absl and gRPC share the canonical numbering). When the status carries
// an Outcome (client_core/outcome.h), the word "not_applied" or "unknown" is appended to the
// message ("... (outcome: unknown)") and, for unary calls, sent as trailing metadata
// "tbproxy-outcome", so clients can decide retries without parsing text. Calls on a stream get
// the same mapping as a CallError message.
//
//   reactor->Finish(ToGrpcStatus(status, context));
#pragma once

#include "absl/status/status.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/status.h"
#include "tbproxy/v1/tbproxy.pb.h"

namespace tb::proxy {

inline constexpr char kOutcomeMetadataKey[] = "tbproxy-outcome";

// `context` may be null (then no trailing metadata is added). Must be called before Finish.
grpc::Status ToGrpcStatus(const absl::Status& status, grpc::ServerContextBase* context);

// The same mapping for one call of a stream. `status` must not be ok.
void ToCallError(const absl::Status& status, ::tbproxy::v1::CallError* error);

}  // namespace tb::proxy
