// Conversion between the public protobuf API (proto/tbproxy/v1) and TigerBeetle's native layout.
//
// The gRPC front end converts at the door: a typed request becomes one SubmitRequest (operation
// + native little-endian events), and a SubmitResult becomes the typed response. Every input
// rule of the API is checked here (required fields, malformed Uint128, u16 ranges, counts), and
// a violation is kInvalidArgument whose message names the field, e.g. "accounts[3].id: required".
// Result bytes that do not fit the operation's result size are kInternal (they come from the
// cluster, not from the caller). Pure functions, no gRPC headers.
//
//   absl::StatusOr<SubmitRequest> request = ToSubmitRequest(proto_request);
//   ... submitter.Submit(*std::move(request), ...) ...
//   absl::Status status = FromSubmitResult(result, &proto_response);
#pragma once

#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "client_core/operation.h"
#include "client_core/u128.h"
#include "proxy/submitter.h"
#include "tbproxy/v1/tbproxy.pb.h"

namespace tb::proxy {

namespace v1 = ::tbproxy::v1;

// The most events one call may carry: EventMax at the largest batch_size_limit (8189). A cluster
// with a smaller limit refuses fewer events later, in the submitter.
uint32_t CallEventsMax(uint8_t operation);

// Uint128 <-> u128.
inline u128 FromProto(const v1::Uint128& value) { return MakeU128(value.hi(), value.lo()); }
inline void ToProto(u128 value, v1::Uint128* out) {
  out->set_lo(U128Low(value));
  out->set_hi(U128High(value));
}

// The wire operation each request converts to: ToSubmitRequest sets it, and a call refused
// before it is converted is counted under it. A Raw request's own; 0 when it is not one byte.
inline uint8_t OperationOf(const v1::CreateAccountsRequest&) {
  return static_cast<uint8_t>(Operation::kCreateAccounts);
}
inline uint8_t OperationOf(const v1::CreateTransfersRequest&) {
  return static_cast<uint8_t>(Operation::kCreateTransfers);
}
inline uint8_t OperationOf(const v1::LookupAccountsRequest&) {
  return static_cast<uint8_t>(Operation::kLookupAccounts);
}
inline uint8_t OperationOf(const v1::LookupTransfersRequest&) {
  return static_cast<uint8_t>(Operation::kLookupTransfers);
}
inline uint8_t OperationOf(const v1::GetAccountTransfersRequest&) {
  return static_cast<uint8_t>(Operation::kGetAccountTransfers);
}
inline uint8_t OperationOf(const v1::GetAccountBalancesRequest&) {
  return static_cast<uint8_t>(Operation::kGetAccountBalances);
}
inline uint8_t OperationOf(const v1::QueryAccountsRequest&) {
  return static_cast<uint8_t>(Operation::kQueryAccounts);
}
inline uint8_t OperationOf(const v1::QueryTransfersRequest&) {
  return static_cast<uint8_t>(Operation::kQueryTransfers);
}
inline uint8_t OperationOf(const v1::GetChangeEventsRequest&) {
  return static_cast<uint8_t>(Operation::kGetChangeEvents);
}
inline uint8_t OperationOf(const v1::RawRequest& request) {
  return request.operation() <= 0xFF ? static_cast<uint8_t>(request.operation()) : 0;
}

absl::StatusOr<SubmitRequest> ToSubmitRequest(const v1::CreateAccountsRequest& request);
absl::StatusOr<SubmitRequest> ToSubmitRequest(const v1::CreateTransfersRequest& request);
absl::StatusOr<SubmitRequest> ToSubmitRequest(const v1::LookupAccountsRequest& request);
absl::StatusOr<SubmitRequest> ToSubmitRequest(const v1::LookupTransfersRequest& request);
absl::StatusOr<SubmitRequest> ToSubmitRequest(const v1::GetAccountTransfersRequest& request);
absl::StatusOr<SubmitRequest> ToSubmitRequest(const v1::GetAccountBalancesRequest& request);
absl::StatusOr<SubmitRequest> ToSubmitRequest(const v1::QueryAccountsRequest& request);
absl::StatusOr<SubmitRequest> ToSubmitRequest(const v1::QueryTransfersRequest& request);
absl::StatusOr<SubmitRequest> ToSubmitRequest(const v1::GetChangeEventsRequest& request);
// Checks the operation is forwardable (137, 140..147) and the bytes are whole events; the bytes
// are passed on unchanged.
absl::StatusOr<SubmitRequest> ToSubmitRequest(const v1::RawRequest& request);

absl::Status FromSubmitResult(const SubmitResult& result, v1::CreateAccountsResponse* response);
absl::Status FromSubmitResult(const SubmitResult& result, v1::CreateTransfersResponse* response);
absl::Status FromSubmitResult(const SubmitResult& result, v1::LookupAccountsResponse* response);
absl::Status FromSubmitResult(const SubmitResult& result, v1::LookupTransfersResponse* response);
absl::Status FromSubmitResult(const SubmitResult& result,
                              v1::GetAccountTransfersResponse* response);
absl::Status FromSubmitResult(const SubmitResult& result,
                              v1::GetAccountBalancesResponse* response);
absl::Status FromSubmitResult(const SubmitResult& result, v1::QueryAccountsResponse* response);
absl::Status FromSubmitResult(const SubmitResult& result, v1::QueryTransfersResponse* response);
absl::Status FromSubmitResult(const SubmitResult& result, v1::GetChangeEventsResponse* response);
absl::Status FromSubmitResult(const SubmitResult& result, v1::RawResponse* response);

// Whether a call of this operation creates accounts or transfers (what read-only tokens may not
// do). `operation` is a native operation number.
bool IsCreateOperation(uint8_t operation);

}  // namespace tb::proxy
