#include "pool/session_pool_options.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "client_core/status_macros.h"

namespace tb::pool {
namespace {

absl::Status CheckDuration(const char* field, absl::Duration value, absl::Duration min,
                           absl::Duration max) {
  if (value < min || value > max) {
    return absl::InvalidArgumentError(absl::StrCat(field, " must be in [", absl::FormatDuration(min),
                                                   ", ", absl::FormatDuration(max), "], got ",
                                                   absl::FormatDuration(value)));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateSessionPoolOptions(const SessionPoolOptions& options) {
  if (options.replica_addresses.empty() ||
      options.replica_addresses.size() > kReplicaCountMax) {
    return absl::InvalidArgumentError(absl::StrCat("replica_addresses: need 1..", kReplicaCountMax,
                                                   ", got ", options.replica_addresses.size()));
  }
  for (const ReplicaAddress& address : options.replica_addresses) {
    if (address.host.empty() || address.port == 0) {
      return absl::InvalidArgumentError(absl::StrCat("replica_addresses: bad address '",
                                                     address.host, ":", address.port, "'"));
    }
  }
  if (options.sessions == 0) {
    return absl::InvalidArgumentError("sessions must be at least 1");
  }
  if (options.session_budget >= kClientsMaxDefault) {
    return absl::InvalidArgumentError(
        absl::StrCat("session_budget must be below the cluster's clients_max ", kClientsMaxDefault,
                     ", got ", options.session_budget));
  }
  if (options.sessions > options.session_budget) {
    return absl::InvalidArgumentError(absl::StrCat("sessions (", options.sessions,
                                                   ") must not exceed session_budget (",
                                                   options.session_budget, ")"));
  }
  TB_RETURN_IF_ERROR(CheckDuration("tick_interval", options.tick_interval, absl::Milliseconds(1),
                                   kTickIntervalMax));
  TB_RETURN_IF_ERROR(CheckDuration("keep_warm_interval", options.keep_warm_interval,
                                   options.tick_interval, kKeepWarmIntervalMax));
  TB_RETURN_IF_ERROR(CheckDuration("replacement_backoff_min", options.replacement_backoff_min,
                                   absl::ZeroDuration(), absl::Minutes(1)));
  TB_RETURN_IF_ERROR(CheckDuration("replacement_backoff_max", options.replacement_backoff_max,
                                   options.replacement_backoff_min, absl::Minutes(10)));
  TB_RETURN_IF_ERROR(CheckDuration("session_stuck_timeout", options.session_stuck_timeout,
                                   options.tick_interval * static_cast<int64_t>(kSessionStuckTicksMin),
                                   kSessionStuckTimeoutMax));
  return absl::OkStatus();
}

absl::Duration ReplacementBackoff(const SessionPoolOptions& options, uint32_t failures) {
  absl::Duration backoff = options.replacement_backoff_min;
  for (uint32_t i = 1; i < failures && backoff < options.replacement_backoff_max; i++) {
    backoff *= 2;
  }
  return std::min(backoff, options.replacement_backoff_max);
}

}  // namespace tb::pool
