#include "devcluster/server_options.h"


#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "client_core/constants.h"

namespace tb::devcluster {

absl::Status ValidatePipelineOptions(const PipelineOptions& pipeline) {
  if (pipeline.prepare_latency < absl::ZeroDuration() ||
      pipeline.prepare_latency > kPrepareLatencyCeiling) {
    return absl::InvalidArgumentError(absl::StrCat(
        "prepare_latency (--prepare-latency) ", absl::FormatDuration(pipeline.prepare_latency),
        " is outside 0..", absl::FormatDuration(kPrepareLatencyCeiling)));
  }
  if (pipeline.prepares_max < 1 || pipeline.prepares_max > kPipelinePreparesMaxCeiling) {
    return absl::InvalidArgumentError(
        absl::StrCat("pipeline prepares_max (--pipeline-max) ", pipeline.prepares_max,
                     " is outside 1..", kPipelinePreparesMaxCeiling));
  }
  if (pipeline.requests_queued_max > kPipelineRequestsQueuedMaxCeiling) {
    return absl::InvalidArgumentError(
        absl::StrCat("pipeline requests_queued_max (--request-queue-max) ",
                     pipeline.requests_queued_max, " is outside 0..",
                     kPipelineRequestsQueuedMaxCeiling));
  }
  return absl::OkStatus();
}

absl::Status ValidateFaultOptions(const FaultOptions& faults) {
  if (faults.reply_delay < absl::ZeroDuration() || faults.reply_delay > kReplyDelayCeiling) {
    return absl::InvalidArgumentError(
        absl::StrCat("reply_delay must be within 0..", absl::FormatDuration(kReplyDelayCeiling)));
  }
  if (!(faults.reply_drop_probability >= 0 && faults.reply_drop_probability <= 1)) {
    return absl::InvalidArgumentError("reply_drop_probability must be within 0..1");
  }
  if (!(faults.connection_reset_probability >= 0 && faults.connection_reset_probability <= 1)) {
    return absl::InvalidArgumentError("connection_reset_probability must be within 0..1");
  }
  return ValidatePipelineOptions(faults.pipeline);
}

absl::Status ValidateServerOptions(const ServerOptions& options) {
  if (options.addresses.empty() || options.addresses.size() > kReplicaCountMax) {
    return absl::InvalidArgumentError(
        absl::StrCat("addresses: between 1 and ", kReplicaCountMax, " are needed"));
  }
  ReplicaProtocolOptions protocol = options.protocol;
  protocol.replica_count = static_cast<uint8_t>(options.addresses.size());
  if (absl::Status status = ValidateReplicaProtocolOptions(protocol); !status.ok()) return status;
  if (options.connections_max < 1 || options.connections_max > kConnectionsPerReplicaCeiling) {
    return absl::InvalidArgumentError(
        absl::StrCat("connections_max must be within 1..", kConnectionsPerReplicaCeiling));
  }
  if (options.send_queue_bytes_max < kMessageSizeMax) {
    return absl::InvalidArgumentError("send_queue_bytes_max must hold at least one message");
  }
  return ValidateFaultOptions(options.faults);
}

}  // namespace tb::devcluster
