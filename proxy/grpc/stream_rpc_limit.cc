#include "proxy/grpc/stream_rpc_limit.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "client_core/assert.h"
#include "client_core/outcome.h"

namespace tb::proxy {

StreamRpcSlot::StreamRpcSlot(StreamRpcSlot&& other) noexcept
    : limit_(std::exchange(other.limit_, nullptr)) {}

StreamRpcSlot& StreamRpcSlot::operator=(StreamRpcSlot&& other) noexcept {
  if (this == &other) return *this;
  Release();
  limit_ = std::exchange(other.limit_, nullptr);
  return *this;
}

void StreamRpcSlot::Release() {
  if (limit_ == nullptr) return;
  std::exchange(limit_, nullptr)->ReleaseOne();
}

StreamRpcLimit::StreamRpcLimit(uint32_t max) : open_(max) {}

absl::StatusOr<StreamRpcSlot> StreamRpcLimit::TryAcquire() {
  if (!open_.TryTake(1)) {
    return WithOutcome(
        absl::ResourceExhaustedError(absl::StrCat(
            "tbproxy holds ", open_.max(),
            " Stream RPCs open (--stream-rpcs-max); close idle streams or try again later")),
        Outcome::kNotApplied);
  }
  return StreamRpcSlot(this);
}

void StreamRpcLimit::ReleaseOne() { open_.Give(1); }

}  // namespace tb::proxy
