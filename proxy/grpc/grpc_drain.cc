#include "proxy/grpc/grpc_drain.h"

#include <utility>

#include "client_core/assert.h"
#include "client_core/outcome.h"

namespace tb::proxy {

absl::Status DrainingStatus() {
  return WithOutcome(absl::UnavailableError("tbproxy is draining"), Outcome::kNotApplied);
}

void GrpcDrain::Refuse(std::function<void()> refuse) {
  {
    absl::MutexLock lock(&mutex_);
    TB_ASSERT(draining_);
    arrivals_ += 1;
    if (holding_ && held_.size() < kHeldCallsMax) {
      held_.push_back(std::move(refuse));
      return;
    }
  }
  refuse();
}

bool GrpcDrain::Register(Stream* stream) {
  absl::MutexLock lock(&mutex_);
  if (draining_) return false;
  const bool inserted = streams_.insert(stream).second;
  TB_ASSERT(inserted);
  return true;
}

void GrpcDrain::Unregister(Stream* stream) {
  absl::MutexLock lock(&mutex_);
  streams_.erase(stream);
}

void GrpcDrain::Begin() {
  std::vector<Stream*> finish_now;
  {
    absl::MutexLock lock(&mutex_);
    TB_ASSERT(!draining_);
    draining_ = true;
    draining_flag_.store(true, std::memory_order_release);
    for (Stream* stream : streams_) {
      if (stream->OnDrainBegun()) finish_now.push_back(stream);
    }
  }
  // Each stream in finish_now is marked finished and waits for this Finish: it cannot be
  // deleted (OnDone comes only after Finish) until the call below.
  for (Stream* stream : finish_now) stream->FinishDraining();
}

void GrpcDrain::Hold() {
  absl::MutexLock lock(&mutex_);
  TB_ASSERT(draining_);
  holding_ = true;
}

void GrpcDrain::ReleaseHeld() {
  std::vector<std::function<void()>> held;
  {
    absl::MutexLock lock(&mutex_);
    TB_ASSERT(holding_);
    holding_ = false;
    held.swap(held_);
  }
  for (std::function<void()>& refuse : held) refuse();
}

size_t GrpcDrain::held() const {
  absl::MutexLock lock(&mutex_);
  return held_.size();
}

uint64_t GrpcDrain::arrivals() const {
  absl::MutexLock lock(&mutex_);
  return arrivals_;
}

}  // namespace tb::proxy
