// Helpers shared by the gRPC handlers of proxy/grpc/grpc_service.cc: the checks before a unary
// call is submitted, the answer built from its result, and what the Stream handler reads.
#pragma once

#include <optional>
#include <utility>

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

// What a unary call hands the submitter.
struct UnarySubmit {
  SubmitRequest request;
  SubmitOptions options;
};

// Everything a unary call checks before it is submitted, in this order: the token, its
// permission for this request, the request itself, the ordering-key metadata. The first failure
// is the call's answer; nothing was submitted.
template <typename Request>
absl::StatusOr<UnarySubmit> PrepareUnary(const TokenAuthenticator* authenticator,
                                         const grpc::ServerContextBase& context,
                                         const Request& request) {
  absl::StatusOr<Permission> permission = Authenticate(authenticator, context);
  if (!permission.ok()) return permission.status();
  absl::Status allowed = CheckPermission(*permission, Creates(request));
  if (!allowed.ok()) return allowed;
  absl::StatusOr<SubmitRequest> submit = ToSubmitRequest(request);
  if (!submit.ok()) return submit.status();
  absl::StatusOr<uint64_t> ordering_key = UnaryOrderingKey(context);
  if (!ordering_key.ok()) return ordering_key.status();
  return UnarySubmit{.request = *std::move(submit),
                     .options = {.deadline = CallDeadline(context), .ordering_key = *ordering_key}};
}

// A unary call's answer from the submitter's result: fills `response` when the result is ok.
template <typename Response>
absl::Status UnaryOutcome(const absl::StatusOr<SubmitResult>& result, Response* response) {
  if (!result.ok()) return result.status();
  return FromSubmitResult(*result, response);
}

}  // namespace tb::proxy::internal
