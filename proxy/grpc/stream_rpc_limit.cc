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

StreamRpcLimit::StreamRpcLimit(uint32_t max) : max_(max) { TB_ASSERT(max_ >= 1); }

absl::StatusOr<StreamRpcSlot> StreamRpcLimit::TryAcquire() {
  uint32_t open = open_.load(std::memory_order_relaxed);
  // A compare-and-swap, not an increment undone on overflow: a concurrent reader of open()
  // never sees more than max_, and two racing streams cannot both take the last place.
  do {
    if (open >= max_) {
      refused_.fetch_add(1, std::memory_order_relaxed);
      return WithOutcome(
          absl::ResourceExhaustedError(absl::StrCat(
              "tbproxy holds ", max_,
              " Stream RPCs open (--stream-rpcs-max); close idle streams or try again later")),
          Outcome::kNotApplied);
    }
  } while (!open_.compare_exchange_weak(open, open + 1, std::memory_order_relaxed));
  return StreamRpcSlot(this);
}

void StreamRpcLimit::ReleaseOne() {
  const uint32_t before = open_.fetch_sub(1, std::memory_order_relaxed);
  TB_ASSERT(before > 0);
}

}  // namespace tb::proxy
