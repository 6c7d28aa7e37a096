#include "proxy/grpc/internal/open_stream.h"

#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "proxy/grpc/grpc_status.h"
#include "proxy/grpc/grpc_stream.h"
#include "proxy/grpc/internal/grpc_call.h"

namespace tb::proxy::internal {
namespace v1 = ::tbproxy::v1;

namespace {

// A stream refused before it starts (authentication, metadata, --stream-rpcs-max, or the drain:
// then it may finish later).
class RejectedStream final : public grpc::ServerBidiReactor<v1::StreamRequest, v1::StreamResponse> {
 public:
  RejectedStream() = default;
  explicit RejectedStream(const grpc::Status& status) { Finish(status); }
  void OnDone() override { delete this; }
};

}  // namespace

grpc::ServerBidiReactor<v1::StreamRequest, v1::StreamResponse>* OpenStream(
    Submitter& submitter, const GrpcServiceOptions& options,
    std::atomic<uint64_t>& ordering_key_next, GrpcDrain* drain, StreamRpcLimit& limit,
    CallMemoryBudget& call_memory, grpc::CallbackServerContext* context) {
  if (drain != nullptr && drain->draining()) {
    auto* refused = new RejectedStream();
    drain->Refuse([refused, context] { refused->Finish(ToGrpcStatus(DrainingStatus(), context)); });
    return refused;
  }
  absl::StatusOr<Permission> permission = Authenticate(options.authenticator, *context);
  if (!permission.ok()) return new RejectedStream(ToGrpcStatus(permission.status(), context));
  // Keys are global in the coalescer: the top bit marks the gRPC streams' share of the key
  // space, so other front ends can number their own keys without meeting ours.
  uint64_t ordering_key =
      kStreamOrderingKeyTag | ordering_key_next.fetch_add(1, std::memory_order_relaxed);
  const auto& metadata = context->client_metadata();
  auto ordering = metadata.find(kOrderingMetadataKey);
  if (ordering != metadata.end()) {
    const absl::string_view value(ordering->second.data(), ordering->second.size());
    if (value == "none") {
      ordering_key = 0;
    } else if (value != "stream") {
      return new RejectedStream(ToGrpcStatus(
          absl::InvalidArgumentError("tbproxy-ordering metadata must be \"stream\" or \"none\""),
          context));
    }
  }
  absl::StatusOr<StreamRpcSlot> slot = limit.TryAcquire();
  if (!slot.ok()) return new RejectedStream(ToGrpcStatus(slot.status(), context));
  return NewStreamCall(submitter, context,
                       {.calls_max = options.stream_calls_max,
                        .ordering_key = ordering_key,
                        .permission = *permission,
                        .drain = drain,
                        .call_memory = &call_memory},
                       *std::move(slot));
}

}  // namespace tb::proxy::internal
