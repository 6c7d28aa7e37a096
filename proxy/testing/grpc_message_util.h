// Building tbproxy.v1 messages and reading a Stream, for the tests of the gRPC front end.
//
//   SetU128(request.add_accounts()->mutable_id(), /*hi=*/0, /*lo=*/1);
//   stream->Write(RawLookupCall(/*correlation_id=*/7, /*id=*/42));
//   std::map<uint64_t, v1::StreamResponse> responses = ReadResponses(stream.get(), 1);
//   EXPECT_EQ(OutcomeMetadata(context), "not_applied");
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <string>

#include "proxy/grpc/grpc_convert.h"
#include "proxy/grpc/grpc_status.h"
#include "tbproxy/v1/tbproxy.grpc.pb.h"

namespace tb::proxy::testing {

inline void SetU128(::tbproxy::v1::Uint128* out, uint64_t hi, uint64_t lo) {
  ToProto(MakeU128(hi, lo), out);
}

// A Stream call that looks up one account by a raw (native bytes) request; the id's low 32 bits
// are the first bytes of the event, so an echoing submitter shows which call it answers.
inline ::tbproxy::v1::StreamRequest RawLookupCall(uint64_t correlation_id, uint32_t id) {
  ::tbproxy::v1::StreamRequest request;
  request.set_correlation_id(correlation_id);
  request.mutable_raw()->set_operation(140);
  std::string ids(16, '\0');
  std::memcpy(ids.data(), &id, sizeof(id));
  request.mutable_raw()->set_events(ids);
  return request;
}

// The call's trailing "tbproxy-outcome" metadata ("not_applied", "unknown"), or "none".
inline std::string OutcomeMetadata(const grpc::ClientContext& context) {
  const auto& trailing = context.GetServerTrailingMetadata();
  auto it = trailing.find(kOutcomeMetadataKey);
  if (it == trailing.end()) return "none";
  return std::string(it->second.data(), it->second.size());
}

using ClientStream =
    grpc::ClientReaderWriter<::tbproxy::v1::StreamRequest, ::tbproxy::v1::StreamResponse>;

// Reads until `count` responses arrived or the stream ended; keyed by correlation id.
inline std::map<uint64_t, ::tbproxy::v1::StreamResponse> ReadResponses(
    ClientStream* stream, size_t count = std::numeric_limits<size_t>::max()) {
  std::map<uint64_t, ::tbproxy::v1::StreamResponse> responses;
  ::tbproxy::v1::StreamResponse response;
  while (responses.size() < count && stream->Read(&response)) {
    responses[response.correlation_id()] = response;
  }
  return responses;
}

}  // namespace tb::proxy::testing
