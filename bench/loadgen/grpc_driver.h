// Drivers that reach the cluster through tbproxy's gRPC API (proto/tbproxy/v1/tbproxy.proto),
// with the asynchronous callback API: thousands of callers in flight on gRPC's few threads.
//
//   TB_ASSIGN_OR_RETURN(auto driver, tb::bench::MakeGrpcDriver({.target = "127.0.0.1:50051",
//                                                              .path = GrpcPath::kTyped}));
//
// Callers are spread over `channels` HTTP/2 connections (caller % channels), so a high caller
// count is not capped by one connection's concurrent-stream limit. kStream opens one Stream RPC
// per `callers_per_stream` callers and pipelines their calls on it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "bench/loadgen/driver.h"

namespace tb::bench {

enum class GrpcPath : uint8_t { kTyped, kRaw, kStream };

struct GrpcDriverOptions {
  std::string target;                  // host:port of tbproxy.
  GrpcPath path = GrpcPath::kTyped;
  uint32_t callers = 1;                // Callers that will use the driver (streams are sized by it).
  uint32_t channels = 1;               // HTTP/2 connections, 1..1024.
  uint32_t callers_per_stream = 64;    // kStream: calls pipelined on one stream, 1..4096.
  bool stream_unordered = false;       // kStream: open streams with "tbproxy-ordering: none".
  absl::Duration call_timeout = absl::ZeroDuration();  // 0: no deadline.
  absl::Duration connect_timeout = absl::Seconds(10);
};

// Connects every channel (kUnavailable if one does not connect in time) and, for kStream, opens
// the streams.
absl::StatusOr<std::unique_ptr<Driver>> MakeGrpcDriver(const GrpcDriverOptions& options);

// Opens `streams` Stream RPCs spread over `channels` connections, sends nothing on them, holds
// them for `hold` (calling `on_open` once all are open and have answered one call) and closes
// them: tbproxy's cost of many idle connected callers. Fails if a stream fails.
absl::Status HoldIdleStreams(const std::string& target, uint32_t channels, uint32_t streams,
                             absl::Duration hold, const std::function<void()>& on_open);

}  // namespace tb::bench
