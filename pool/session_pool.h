// A pool of TigerBeetle cluster sessions that pull encoded messages from a MessageSource.
//
// Each session is one client id with one request in flight (PROTOCOL.md §8.4) and its own TCP
// connection to every replica (§2.3, §14.5). An idle registered session asks the source for the
// next message that fits its batch_size_limit, sends it, hands the reply to the message's
// on_done, and asks again. Sessions the cluster evicts are replaced by sessions with new client
// ids; idle sessions send a cheap committing request now and then so that other clients of the
// cluster do not push them out of its 64-slot session table (§9.3). A message that comes back
// not applied because its session was lost goes to the front of the line for another session
// (at most kMessageAttemptsMax sessions, before its callers' deadline). A session left without
// a reply for session_stuck_timeout while the cluster answers the others is retired: its
// callers hear outcome unknown, and a session with a new client id takes its place.
//
//   auto pool = tb::pool::SessionPool::Create(io_context, options, &coalescer, &metrics);
//   (*pool)->SetBatchSizeLimitCallback([&](uint32_t limit) { coalescer.SetLimit(limit); });
//   (*pool)->Start();   // Then coalescer calls pool->Wake() whenever it queues work.
//
// Threading: everything runs on the one thread that runs `io_context` (the pool's I/O thread).
// Start(), Wake(), Drain(), ready(), registered_session_count() and status() may be called from
// any thread; they post to the I/O thread or read atomics. MessageSource, PoolObserver and every
// callback are called on the I/O thread only.
//
// Lifetime: the io_context, the source and the observer must outlive the pool. Destroy the pool
// after Drain() has reported completion, or once the io_context no longer runs (the destructor
// closes the connections; handlers still queued in the io_context then do nothing).
#pragma once

#include <cstdint>
#include <memory>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "pool/message_source.h"
#include "pool/pool_observer.h"
#include "pool/session_pool_options.h"

namespace asio {
class io_context;
}  // namespace asio

namespace tb::pool {

namespace internal {
class PoolCore;
}  // namespace internal

class SessionPool {
 public:
  // Validates `options` (the Status names the bad field). `observer` may be null.
  static absl::StatusOr<std::unique_ptr<SessionPool>> Create(asio::io_context& io_context,
                                                            SessionPoolOptions options,
                                                            MessageSource* source,
                                                            PoolObserver* observer);
  ~SessionPool();
  SessionPool(const SessionPool&) = delete;
  SessionPool& operator=(const SessionPool&) = delete;

  // Called on the I/O thread with the smallest batch_size_limit among registered sessions,
  // whenever that value changes (first registration included). Set before Start().
  void SetBatchSizeLimitCallback(absl::AnyInvocable<void(uint32_t batch_size_limit)> callback);

  // Opens the sessions: each gets a fresh client id from a CSPRNG, connects to every replica and
  // registers. Call once. Any thread.
  void Start();

  // New work is waiting in the source: every idle registered session pulls from it. Any thread.
  // Does nothing while every session has a request in flight: each pulls when its reply comes.
  void Wake();

  // Stops pulling new messages (those still in the source, and any queued later, fail at once
  // with kUnavailable, outcome not_applied), waits for the replies to messages in flight (at most
  // `timeout`; then they fail with kUnavailable, outcome unknown), then closes every connection
  // and calls `on_drained` on the I/O thread. Any thread; call once.
  void Drain(absl::Duration timeout, absl::AnyInvocable<void()> on_drained);

  // True while at least one session is registered and the pool has not failed. Any thread.
  bool ready() const;
  // Sessions registered right now. Any thread.
  uint32_t registered_session_count() const;
  // OK, or why the pool stopped for good (e.g. kFailedPrecondition: the cluster refused the
  // client release). Any thread.
  absl::Status status() const;

 private:
  explicit SessionPool(std::shared_ptr<internal::PoolCore> core);
  // Shared with the handlers posted to the io_context, which hold it weakly.
  std::shared_ptr<internal::PoolCore> core_;
};

}  // namespace tb::pool
