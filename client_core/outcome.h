// Whether a failed request may still have been applied by the cluster.
//
// Every error a caller receives for a request that reached (or may have reached) the cluster
// carries this as a Status payload, so retry decisions never have to guess:
//   kNotApplied: the cluster certainly did not apply it (never sent, refused before queueing,
//                or rejected by the cluster without executing it). Safe to retry as is.
//   kUnknown:    it was sent and may have been applied (deadline passed in flight, session lost
//                mid-request). Retry with the same ids: creates are idempotent (`exists`).
//
//   return tb::WithOutcome(absl::DeadlineExceededError("in flight"), tb::Outcome::kUnknown);
//   if (tb::GetOutcome(status) == tb::Outcome::kNotApplied) Retry();
#pragma once

#include <optional>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace tb {

enum class Outcome { kNotApplied, kUnknown };

inline constexpr absl::string_view kOutcomePayloadUrl = "type.tbproxy.dev/outcome";

inline absl::Status WithOutcome(absl::Status status, Outcome outcome) {
  status.SetPayload(kOutcomePayloadUrl,
                    absl::Cord(outcome == Outcome::kNotApplied ? "not_applied" : "unknown"));
  return status;
}

inline std::optional<Outcome> GetOutcome(const absl::Status& status) {
  auto payload = status.GetPayload(kOutcomePayloadUrl);  // absl::optional in this Abseil build.
  if (!payload.has_value()) return std::nullopt;
  return *payload == "not_applied" ? Outcome::kNotApplied : Outcome::kUnknown;
}

}  // namespace tb
