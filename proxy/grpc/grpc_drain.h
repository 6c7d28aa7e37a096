// The gRPC front end's side of tbproxy's drain: every call gRPC hands to tbproxy once the drain
// has begun is answered by tbproxy, with an outcome, and never left for gRPC to cancel.
//
// gRPC's Server::Shutdown cancels (CANCELLED, no metadata) every call that reaches the server
// after it was called, before any handler sees it: the clients learn to stop sending only from
// the GOAWAY it sends, one round trip later. So the drain runs in this order (proxy/app/main.cc):
//   Begin()        new calls are refused UNAVAILABLE (not_applied); open streams stop reading and
//                  finish, once their calls are answered, UNAVAILABLE (not_applied).
//   ... the coalescer and the pool answer every call already submitted ...
//   Hold()         new calls are held unanswered, so that callers waiting for them send nothing
//                  more; once no call has arrived for a moment, Shutdown sends the GOAWAY.
//   ReleaseHeld()  after the GOAWAY had time to arrive: held calls are refused as in Begin().
//
//   GrpcDrain drain;  // Owned by GrpcService; handlers call Refuse, streams Register.
//   if (drain.draining()) return drain.Refuse([state] { ...Finish(DrainingStatus())... });
//   drain.Begin(); ... drain.Hold(); ... drain.ReleaseHeld();
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"

namespace tb::proxy {

// UNAVAILABLE with outcome not_applied: what a call refused by the drain is answered.
absl::Status DrainingStatus();

class GrpcDrain {
 public:
  // A stream open when the drain begins. OnDrainBegun runs with the registry locked: it must
  // not finish the stream (which may delete it and unregister); it returns true when the stream
  // must be finished now, which Begin then does through FinishDraining outside the lock.
  class Stream {
   public:
    virtual bool OnDrainBegun() = 0;
    virtual void FinishDraining() = 0;

   protected:
    ~Stream() = default;
  };

  // Held calls beyond this are refused at once: a bound on what the hold keeps.
  static constexpr size_t kHeldCallsMax = 4096;

  // After draining() was true: `refuse` answers a new call with DrainingStatus(); it runs now
  // or, while holding, at ReleaseHeld. Any thread.
  void Refuse(std::function<void()> refuse) ABSL_LOCKS_EXCLUDED(mutex_);

  // Streams register when created and unregister in OnDone. Register returns false when the
  // drain has already begun (then the stream behaves as if OnDrainBegun had run).
  bool Register(Stream* stream) ABSL_LOCKS_EXCLUDED(mutex_);
  void Unregister(Stream* stream) ABSL_LOCKS_EXCLUDED(mutex_);

  void Begin() ABSL_LOCKS_EXCLUDED(mutex_);
  void Hold() ABSL_LOCKS_EXCLUDED(mutex_);  // After Begin.
  void ReleaseHeld() ABSL_LOCKS_EXCLUDED(mutex_);  // After Hold; later calls are refused at once.

  // Lock-free, for every call's handler. A call that passes just before Begin is submitted,
  // and refused by the closed coalescer (also UNAVAILABLE, not_applied).
  bool draining() const { return draining_flag_.load(std::memory_order_acquire); }
  size_t held() const ABSL_LOCKS_EXCLUDED(mutex_);
  // Calls refused or held so far: the drain waits for it to stop growing before Shutdown.
  uint64_t arrivals() const ABSL_LOCKS_EXCLUDED(mutex_);

 private:
  std::atomic<bool> draining_flag_{false};  // draining_, readable without the lock.
  mutable absl::Mutex mutex_;
  bool draining_ ABSL_GUARDED_BY(mutex_) = false;
  bool holding_ ABSL_GUARDED_BY(mutex_) = false;
  absl::flat_hash_set<Stream*> streams_ ABSL_GUARDED_BY(mutex_);
  std::vector<std::function<void()>> held_ ABSL_GUARDED_BY(mutex_);
  uint64_t arrivals_ ABSL_GUARDED_BY(mutex_) = 0;
};

}  // namespace tb::proxy
