// Helpers shared by the unary and streaming handlers of proxy/grpc/grpc_service.cc.
#pragma once

#include <optional>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/server_context.h"
#include "proxy/grpc/grpc_auth.h"
#include "proxy/grpc/grpc_convert.h"
#include "proxy/submitter.h"
#include "tbproxy/v1/tbproxy.pb.h"

namespace tb::proxy::internal {

// The call's deadline, InfiniteFuture when the client set none.
absl::Time CallDeadline(const grpc::ServerContextBase& context);

// The caller's permission: kWrite when authentication is off, otherwise the token's.
// kUnauthenticated when a token is needed and missing or unknown.
absl::StatusOr<Permission> Authenticate(const TokenAuthenticator* authenticator,
                                        const grpc::ServerContextBase& context);

// The coalescer ordering key of a unary call: 0 without "tbproxy-ordering-key" metadata,
// otherwise a non-zero key outside the streams' share (kStreamOrderingKeyTag clear).
// kInvalidArgument for an empty or over-long name.
absl::StatusOr<uint64_t> UnaryOrderingKey(const grpc::ServerContextBase& context);

// kPermissionDenied when `permission` may not run a call that `creates`.
absl::Status CheckPermission(Permission permission, bool creates);

// Whether a request creates accounts or transfers.
template <typename Request>
bool Creates(const Request&) {
  return false;
}
inline bool Creates(const ::tbproxy::v1::CreateAccountsRequest&) { return true; }
inline bool Creates(const ::tbproxy::v1::CreateTransfersRequest&) { return true; }
inline bool Creates(const ::tbproxy::v1::RawRequest& request) {
  return request.operation() <= 0xFF && IsCreateOperation(static_cast<uint8_t>(request.operation()));
}

}  // namespace tb::proxy::internal
