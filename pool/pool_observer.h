// Hooks through which a SessionPool reports what happens to its sessions (for metrics and logs).
//
// Every method has an empty default, so an observer overrides only what it measures. All calls
// come from the pool's I/O thread and must return quickly without blocking and without calling
// back into the pool.
//
//   class Metrics : public tb::pool::PoolObserver {
//     void OnRoundTrip(uint8_t operation, absl::Duration rtt) override { histogram.Observe(rtt); }
//   };
#pragma once

#include <cstdint>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "client_core/header.h"
#include "client_core/u128.h"

namespace tb::pool {

// Why a message came back not applied and was sent again on another session.
enum class ResubmissionReason : uint8_t {
  kNoSession,               // Evicted for no_session: pushed out of the cluster's session table.
  kSessionTooLow,           // Evicted for session_too_low.
  kSessionReleaseMismatch,  // Evicted for session_release_mismatch.
  kSendRefused,             // The session refused the send: it was no longer ready.
};
inline constexpr uint8_t kResubmissionReasonCount = 4;
static_assert(static_cast<uint8_t>(ResubmissionReason::kSendRefused) + 1 ==
              kResubmissionReasonCount);

// "no_session", "session_too_low", "session_release_mismatch", "send_refused" (metric labels).
inline const char* ResubmissionReasonName(ResubmissionReason reason) {
  switch (reason) {
    case ResubmissionReason::kNoSession: return "no_session";
    case ResubmissionReason::kSessionTooLow: return "session_too_low";
    case ResubmissionReason::kSessionReleaseMismatch: return "session_release_mismatch";
    case ResubmissionReason::kSendRefused: return "send_refused";
  }
  return "unknown";
}

class PoolObserver {
 public:
  virtual ~PoolObserver() = default;

  // A session's register request committed: it now serves messages.
  virtual void OnSessionRegistered(u128 client, uint64_t session, uint32_t batch_size_limit) {}
  // The cluster evicted a session (PROTOCOL.md §6.5).
  virtual void OnSessionEvicted(u128 client, EvictionReason reason) {}
  // A new session (new client id) was started to take the place of a lost one.
  virtual void OnSessionReplaced(u128 old_client, u128 new_client) {}
  // A session's request had no reply for `silent_for` (>= session_stuck_timeout) while the
  // cluster answered other sessions: the pool closed it (its callers hear outcome unknown) and
  // starts a session with a new client id in its place (OnSessionReplaced follows).
  virtual void OnSessionRetired(u128 client, absl::Duration silent_for) {}
  // The same, but session_budget - sessions retired client ids are already held, so the pool
  // keeps the session and waits on (its callers' deadlines still apply). Once per stuck request.
  virtual void OnSessionStuckKept(u128 client, absl::Duration silent_for) {}
  // A session learned a higher view (the cluster's primary may have changed). Each session
  // reports it: one view change of the cluster arrives once per session that sees it.
  virtual void OnViewChange(u128 client, uint32_t view) {}
  // A session's request (or register) timed out and was re-sent, byte-identical; attempts >= 1.
  virtual void OnRequestResent(u128 client, uint32_t attempts) {}
  // A message came back not applied because its session was lost and goes to the front of the
  // line for another session; `attempts` >= 1 sessions have failed it so far.
  virtual void OnMessageResubmitted(ResubmissionReason reason, uint32_t attempts) {}
  // One message was answered: time from its first transmission to its reply.
  virtual void OnRoundTrip(uint8_t operation, absl::Duration round_trip) {}
  // A keep-warm request of an otherwise idle session committed.
  virtual void OnKeepWarm(u128 client) {}
  // The pool stopped for good because of an error (e.g. the cluster refused the release); not
  // called for Drain().
  virtual void OnPoolFailed(const absl::Status& status) {}
};

}  // namespace tb::pool
