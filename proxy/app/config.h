// tbproxy's configuration: one typed struct, read once at start from flags and TBPROXY_*
// environment variables, validated before anything starts.
//
// Every setting has one name, used three ways: the flag --cluster-addresses (or
// --cluster_addresses), the environment variable TBPROXY_CLUSTER_ADDRESSES, and in error
// messages ("cluster-addresses: ..."). A flag given on the command line wins over the
// environment; a setting given nowhere keeps the default below.
//
//   tb::NormalizeFlagNames(argc, argv);                 // --a-b -> --a_b, before absl parses
//   absl::ParseCommandLine(argc, argv);
//   TB_ASSIGN_OR_RETURN(tb::proxy::Config config, tb::proxy::ConfigFromFlagsAndEnvironment());
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "client_core/parse.h"
#include "client_core/tcp_transport.h"
#include "client_core/u128.h"
#include "proxy/constants.h"
#include "proxy/log/log.h"

namespace tb::proxy {

struct Config {
  // gRPC front end.
  HostPort listen = {"127.0.0.1", 50051};  // Port 0 = any free port.
  uint32_t grpc_message_size_max = 16 * 1024 * 1024;  // Bytes, per received or sent message.
  uint32_t grpc_streams_max = 1000;  // Concurrent HTTP/2 streams per client connection.
  uint32_t grpc_connections_max = kGrpcConnectionsMaxDefault;  // Client connections at once.
  uint64_t grpc_call_memory_max = kGrpcCallMemoryMaxDefault;  // Bytes held by calls not done.
  uint32_t stream_calls_max = 64;  // Calls in flight on one Stream RPC before reading pauses.
  uint32_t stream_rpcs_max = kStreamRpcsMaxDefault;  // Stream RPCs open at once, all clients.
  absl::Duration keepalive_time = absl::Seconds(60);
  absl::Duration keepalive_timeout = absl::Seconds(20);

  // Cluster. No addresses: tbproxy starts an embedded, in-memory, NOT durable dev cluster.
  std::vector<ReplicaAddress> cluster_addresses;
  u128 cluster_id = 0;
  uint32_t sessions = 4;
  uint32_t session_budget = 8;  // Cluster session slots tbproxy may hold, replacements included.
  // A session whose request is unanswered this long while the cluster answers other sessions is
  // retired and replaced (pool/session_pool_options.h).
  absl::Duration session_stuck_timeout = absl::Seconds(30);

  // Coalescer bounds.
  uint64_t queued_events_max = 1'000'000;
  uint64_t queued_bytes_max = 256ull << 20;
  uint32_t callers_max = 100'000;

  // Security. TLS when tls_cert_file is set; mutual TLS when tls_client_ca_file is set too.
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string tls_client_ca_file;
  std::string token_file;  // Bearer tokens (proxy/grpc/grpc_auth.h); empty = no authentication.

  // Other listeners; none = off.
  std::optional<HostPort> metrics_listen;  // A numeric address (proxy/metrics/metrics_http.h).
  // Official TigerBeetle clients (proxy/native/native_frontend.h); a numeric address.
  std::optional<HostPort> native_listen;
  uint32_t native_sessions_max = 10'000;  // Virtual sessions of native clients.
  uint32_t native_connections_max = kNativeConnectionsMaxDefault;
  uint64_t native_write_queue_bytes_max = kNativeWriteQueueBytesMaxDefault;  // Per connection.
  uint64_t native_write_queue_bytes_total_max = kNativeWriteQueueBytesTotalMaxDefault;  // All.

  absl::Duration drain_timeout = absl::Seconds(15);  // SIGTERM: finish calls in flight.
  // The pool thread polls this long after its last event before sleeping (proxy/app/io_loop.h).
  absl::Duration busy_poll = absl::ZeroDuration();
  LogLevel log_level = LogLevel::kInfo;

  bool embedded_cluster() const { return cluster_addresses.empty(); }
};

// Returns the raw text of a setting by its name ("cluster-addresses"), or nullopt if unset.
using SettingLookup = absl::FunctionRef<std::optional<std::string>(absl::string_view name)>;

// Parses every setting found by `lookup` over the defaults, then validates. Errors name the
// setting: "sessions: must be 1..63 (got 0)".
absl::StatusOr<Config> ParseConfig(SettingLookup lookup);
absl::Status ValidateConfig(const Config& config);

// Flags (as parsed by absl::ParseCommandLine) first, then TBPROXY_* environment variables.
absl::StatusOr<Config> ConfigFromFlagsAndEnvironment();

// The names of all settings, for tests and the help text.
std::vector<std::string> ConfigSettingNames();

}  // namespace tb::proxy
