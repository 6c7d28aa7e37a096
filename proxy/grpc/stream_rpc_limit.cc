#include "proxy/grpc/stream_rpc_limit.h"

#include "absl/strings/str_cat.h"
#include "client_core/outcome.h"

namespace tb::proxy {

StreamRpcLimit::StreamRpcLimit(uint32_t max) : open_(max) {}

absl::StatusOr<StreamRpcSlot> StreamRpcLimit::TryAcquire() {
  StreamRpcSlot slot = open_.TryHold(1);
  if (!slot.held()) {
    return WithOutcome(
        absl::ResourceExhaustedError(absl::StrCat(
            "tbproxy holds ", open_.max(),
            " Stream RPCs open (--stream-rpcs-max); close idle streams or try again later")),
        Outcome::kNotApplied);
  }
  return slot;
}

}  // namespace tb::proxy
