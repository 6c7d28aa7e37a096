#include "devcluster/server_options.h"

#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "client_core/constants.h"

namespace tb::devcluster {

absl::StatusOr<std::vector<ListenAddress>> ParseListenAddresses(absl::string_view list) {
  std::vector<ListenAddress> addresses;
  for (absl::string_view item : absl::StrSplit(list, ',')) {
    ListenAddress address{.host = "127.0.0.1"};
    absl::string_view port = item;
    if (const size_t colon = item.rfind(':'); colon != absl::string_view::npos) {
      absl::string_view host = item.substr(0, colon);
      if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
        host = host.substr(1, host.size() - 2);
      }
      if (host.empty()) return absl::InvalidArgumentError(absl::StrCat("no host in '", item, "'"));
      address.host = std::string(host);
      port = item.substr(colon + 1);
    }
    uint32_t number = 0;
    if (!absl::SimpleAtoi(port, &number) || number > 65535) {
      return absl::InvalidArgumentError(absl::StrCat("bad port in '", item, "'"));
    }
    address.port = static_cast<uint16_t>(number);
    addresses.push_back(std::move(address));
  }
  if (addresses.empty() || addresses.size() > kReplicaCountMax) {
    return absl::InvalidArgumentError(absl::StrCat("between 1 and ", kReplicaCountMax,
                                                   " addresses are needed"));
  }
  return addresses;
}

absl::Status ValidatePipelineOptions(const PipelineOptions& pipeline) {
  if (pipeline.prepare_latency < absl::ZeroDuration() ||
      pipeline.prepare_latency > absl::Minutes(1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "prepare_latency (--prepare-latency) ", absl::FormatDuration(pipeline.prepare_latency),
        " is outside 0..1m"));
  }
  if (pipeline.prepares_max < 1 || pipeline.prepares_max > kPipelinePreparesMaxLimit) {
    return absl::InvalidArgumentError(
        absl::StrCat("pipeline prepares_max (--pipeline-max) ", pipeline.prepares_max,
                     " is outside 1..", kPipelinePreparesMaxLimit));
  }
  if (pipeline.requests_queued_max > kPipelineRequestsQueuedLimit) {
    return absl::InvalidArgumentError(
        absl::StrCat("pipeline requests_queued_max (--request-queue-max) ",
                     pipeline.requests_queued_max, " is outside 0..",
                     kPipelineRequestsQueuedLimit));
  }
  return absl::OkStatus();
}

absl::Status ValidateFaultOptions(const FaultOptions& faults) {
  if (faults.reply_delay < absl::ZeroDuration() || faults.reply_delay > absl::Minutes(10)) {
    return absl::InvalidArgumentError("reply_delay must be within 0..10m");
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
  if (options.connections_max < 1 || options.connections_max > kConnectionsPerReplicaMax) {
    return absl::InvalidArgumentError(
        absl::StrCat("connections_max must be within 1..", kConnectionsPerReplicaMax));
  }
  if (options.send_queue_bytes_max < kMessageSizeMax) {
    return absl::InvalidArgumentError("send_queue_bytes_max must hold at least one message");
  }
  return ValidateFaultOptions(options.faults);
}

}  // namespace tb::devcluster
