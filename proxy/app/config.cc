#include "proxy/app/config.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <type_traits>

#include "absl/flags/flag.h"
#include "absl/flags/marshalling.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "client_core/constants.h"
#include "client_core/status_macros.h"
#include "proxy/coalescer/coalescer_options.h"

namespace tb::proxy {
namespace {

std::string DefaultText(const HostPort& address) { return HostPortToString(address); }
std::string DefaultText(u128 value) { return U128ToDecimal(value); }
std::string DefaultText(LogLevel level) { return std::string(LogLevelName(level)); }
std::string DefaultText(absl::Duration duration) {
  // "60s" rather than absl's "1m": the spelling the README and most users write.
  if (duration % absl::Seconds(1) == absl::ZeroDuration()) {
    return absl::StrCat(absl::ToInt64Seconds(duration), "s");
  }
  return absl::FormatDuration(duration);
}
template <typename T>
std::string DefaultText(const T& value) {
  return absl::StrCat(value);
}

// Help text that ends with the setting's default, taken from a default-constructed Config, so
// that --help cannot drift from the code (tests/examples_test.py checks README.md against it).
template <typename Field>
std::string Help(absl::string_view text, Field Config::*field) {
  static const Config* const defaults = new Config;
  return absl::StrCat(text, " Default ", DefaultText(defaults->*field), ".");
}

}  // namespace
}  // namespace tb::proxy

// Every setting is an optional string flag: "not given" must be distinguishable from "given
// with the default value", so that the environment applies only when the flag is absent. The
// text is parsed (with absl's own flag marshalling) in one place, ParseConfig, for both sources.
#define TB_SETTING_FLAG(name, help) ABSL_FLAG(std::optional<std::string>, name, std::nullopt, help)

using tb::proxy::Config;
using tb::proxy::Help;

TB_SETTING_FLAG(listen,
                Help("gRPC listen address host:port (port 0: any free port).", &Config::listen));
TB_SETTING_FLAG(grpc_message_size_max,
                Help(absl::StrCat("Largest gRPC message received or sent, bytes (",
                                  tb::proxy::kGrpcMessageSizeMaxFloor, "..",
                                  tb::proxy::kGrpcMessageSizeMaxCeiling, ")."),
                     &Config::grpc_message_size_max));
TB_SETTING_FLAG(grpc_streams_max,
                Help(absl::StrCat("Concurrent HTTP/2 streams per client connection (1..",
                                  tb::proxy::kGrpcStreamsMaxCeiling, ")."),
                     &Config::grpc_streams_max));
TB_SETTING_FLAG(grpc_connections_max,
                Help(absl::StrCat("gRPC client connections open at once (1..",
                                  tb::proxy::kGrpcConnectionsMaxCeiling,
                                  "); more are closed at accept."),
                     &Config::grpc_connections_max));
TB_SETTING_FLAG(grpc_call_memory_max,
                Help(absl::StrCat("Bytes that gRPC calls not yet done may hold, requests and "
                                  "responses waiting for their clients (",
                                  tb::proxy::kGrpcCallMemoryMaxFloor, "..",
                                  tb::proxy::kGrpcCallMemoryMaxCeiling,
                                  "); a call that does not fit is refused RESOURCE_EXHAUSTED."),
                     &Config::grpc_call_memory_max));
TB_SETTING_FLAG(stream_calls_max,
                Help(absl::StrCat("Calls in flight on one Stream RPC before the proxy stops "
                                  "reading it (1..",
                                  tb::proxy::kStreamCallsMaxCeiling, ")."),
                     &Config::stream_calls_max));
TB_SETTING_FLAG(stream_rpcs_max,
                Help(absl::StrCat("Stream RPCs open at once over all clients (1..",
                                  tb::proxy::kStreamRpcsMaxCeiling,
                                  "); one more is refused RESOURCE_EXHAUSTED."),
                     &Config::stream_rpcs_max));
TB_SETTING_FLAG(keepalive_time,
                Help("Ping an idle client connection after this long.", &Config::keepalive_time));
TB_SETTING_FLAG(keepalive_timeout, Help("Close a connection whose ping is unanswered this long.",
                                        &Config::keepalive_timeout));
TB_SETTING_FLAG(cluster_addresses,
                "TigerBeetle replicas host:port,... in the cluster's order. "
                "Empty: start an embedded in-memory dev cluster (NOT "
                "durable). Default empty.");
TB_SETTING_FLAG(cluster_id, Help("Cluster id, decimal or 0x-hex u128.", &Config::cluster_id));
TB_SETTING_FLAG(sessions,
                Help(absl::StrCat("Cluster sessions kept registered (1 request in flight each; "
                                  "1..",
                                  tb::proxy::kSessionsMaxCeiling, ")."),
                     &Config::sessions));
TB_SETTING_FLAG(session_budget,
                Help(absl::StrCat("Cluster session slots tbproxy may hold, replacements "
                                  "included (sessions..",
                                  tb::proxy::kSessionsMaxCeiling, ")."),
                     &Config::session_budget));
TB_SETTING_FLAG(session_stuck_timeout,
                Help("Retire and replace a session whose request is unanswered this long while "
                     "the cluster answers other sessions (its callers hear outcome unknown; "
                     "25s..1h).",
                     &Config::session_stuck_timeout));
TB_SETTING_FLAG(queued_events_max,
                Help("Events waiting for a session, at most.", &Config::queued_events_max));
TB_SETTING_FLAG(queued_bytes_max,
                Help("Event bytes waiting for a session, at most.", &Config::queued_bytes_max));
TB_SETTING_FLAG(callers_max, Help("Calls queued or in flight, at most.", &Config::callers_max));
TB_SETTING_FLAG(tls_cert_file, "PEM certificate chain: serve gRPC over TLS.");
TB_SETTING_FLAG(tls_key_file, "PEM private key of --tls-cert-file.");
TB_SETTING_FLAG(tls_client_ca_file, "PEM CA bundle: require client certificates (mutual TLS).");
TB_SETTING_FLAG(token_file,
                "Bearer token file (name:read|write:sha256:<hex> per line): "
                "require tokens.");
TB_SETTING_FLAG(metrics_listen,
                "Prometheus /metrics, /healthz, /readyz on host:port (a numeric "
                "address). Empty: off.");
TB_SETTING_FLAG(native_listen,
                "TigerBeetle-protocol listener host:port (a numeric address) for "
                "official TigerBeetle clients, e.g. 127.0.0.1:3000. Empty: off.");
TB_SETTING_FLAG(native_sessions_max,
                Help(absl::StrCat("Virtual sessions of native clients (1..",
                                  tb::proxy::kNativeSessionsMaxCeiling,
                                  "); the least recently committed is evicted."),
                     &Config::native_sessions_max));
TB_SETTING_FLAG(native_connections_max, Help(absl::StrCat("Native client connections (1..",
                                                          tb::proxy::kNativeConnectionsMaxCeiling,
                                                          "); more are closed at accept."),
                                             &Config::native_connections_max));
TB_SETTING_FLAG(native_write_queue_bytes_max,
                Help(absl::StrCat("Reply bytes queued for one native connection (",
                                  tb::proxy::kNativeWriteQueueBytesMaxFloor, "..",
                                  tb::proxy::kNativeWriteQueueBytesMaxCeiling,
                                  "); a slower reader is disconnected."),
                     &Config::native_write_queue_bytes_max));
TB_SETTING_FLAG(native_write_queue_bytes_total_max,
                Help(absl::StrCat("Reply bytes queued for every native connection together (",
                                  tb::proxy::kNativeWriteQueueBytesMaxFloor, "..",
                                  tb::proxy::kNativeWriteQueueBytesTotalMaxCeiling,
                                  "); beyond it the connections holding the most are closed."),
                     &Config::native_write_queue_bytes_total_max));
TB_SETTING_FLAG(drain_timeout, Help("On SIGTERM/SIGINT, wait this long for calls in flight.",
                                    &Config::drain_timeout));
TB_SETTING_FLAG(busy_poll,
                "After its last event, the cluster-session thread polls this long "
                "before sleeping: lower latency at light load for up to one CPU "
                "(0s..1ms). Default 0s: off.");
TB_SETTING_FLAG(log_level, Help("debug, info, warning or error.", &Config::log_level));

namespace tb::proxy {
namespace {

using StringFlag = absl::Flag<std::optional<std::string>>;

absl::Status SettingError(absl::string_view name, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(name, ": ", problem));
}

template <typename T>
absl::Status ParseValue(absl::string_view name, absl::string_view text, T* out) {
  std::string error;
  if (!absl::ParseFlag(text, out, &error)) {
    return SettingError(name, absl::StrCat("cannot parse \"", text, "\": ", error));
  }
  return absl::OkStatus();
}

// The parsers of the settings that are not plain numbers, strings or durations.
absl::Status ParseValue(absl::string_view name, absl::string_view text, u128* out) {
  absl::StatusOr<u128> value = ParseU128(text);
  if (!value.ok()) return SettingError(name, value.status().message());
  *out = *value;
  return absl::OkStatus();
}

// A listen address: port 0 picks a free port.
absl::Status ParseValue(absl::string_view name, absl::string_view text, HostPort* out) {
  absl::StatusOr<HostPort> address = ParseHostPort(text, {.port_zero_allowed = true});
  if (!address.ok()) return SettingError(name, address.status().message());
  *out = *std::move(address);
  return absl::OkStatus();
}

// An optional listener: empty text turns it off.
absl::Status ParseValue(absl::string_view name, absl::string_view text,
                        std::optional<HostPort>* out) {
  if (absl::StripAsciiWhitespace(text).empty()) {
    out->reset();
    return absl::OkStatus();
  }
  HostPort address;
  if (absl::Status parsed = ParseValue(name, text, &address); !parsed.ok()) return parsed;
  *out = std::move(address);
  return absl::OkStatus();
}

// The cluster's replicas; empty text means the embedded dev cluster.
absl::Status ParseValue(absl::string_view name, absl::string_view text,
                        std::vector<ReplicaAddress>* out) {
  out->clear();
  if (absl::StripAsciiWhitespace(text).empty()) return absl::OkStatus();
  absl::StatusOr<std::vector<ReplicaAddress>> addresses =
      ParseHostPortList(text, {.default_host = "127.0.0.1"});
  if (!addresses.ok()) return SettingError(name, addresses.status().message());
  *out = *std::move(addresses);
  return absl::OkStatus();
}

absl::Status ParseValue(absl::string_view name, absl::string_view text, LogLevel* out) {
  if (ParseLogLevel(text, out)) return absl::OkStatus();
  return SettingError(name, "must be debug, info, warning or error");
}

struct Setting {
  const char* name;  // Dashed: "cluster-addresses".
  const StringFlag* flag;
  absl::Status (*apply)(absl::string_view name, absl::string_view text, Config* config);
};

// One setting: its dashed name, its flag FLAGS_<field> and the Config field it fills.
#define TB_SETTING(dashed, field)                                                                \
  Setting {                                                                                      \
    dashed, &FLAGS_##field, [](absl::string_view name, absl::string_view text, Config* config) { \
      return ParseValue(name, text, &config->field);                                             \
    }                                                                                            \
  }

const std::vector<Setting>& Settings() {
  static const auto* settings = new std::vector<Setting>{
      TB_SETTING("listen", listen),
      TB_SETTING("grpc-message-size-max", grpc_message_size_max),
      TB_SETTING("grpc-streams-max", grpc_streams_max),
      TB_SETTING("grpc-connections-max", grpc_connections_max),
      TB_SETTING("grpc-call-memory-max", grpc_call_memory_max),
      TB_SETTING("stream-calls-max", stream_calls_max),
      TB_SETTING("stream-rpcs-max", stream_rpcs_max),
      TB_SETTING("keepalive-time", keepalive_time),
      TB_SETTING("keepalive-timeout", keepalive_timeout),
      TB_SETTING("cluster-addresses", cluster_addresses),
      TB_SETTING("cluster-id", cluster_id),
      TB_SETTING("sessions", sessions),
      TB_SETTING("session-budget", session_budget),
      TB_SETTING("session-stuck-timeout", session_stuck_timeout),
      TB_SETTING("queued-events-max", queued_events_max),
      TB_SETTING("queued-bytes-max", queued_bytes_max),
      TB_SETTING("callers-max", callers_max),
      TB_SETTING("tls-cert-file", tls_cert_file),
      TB_SETTING("tls-key-file", tls_key_file),
      TB_SETTING("tls-client-ca-file", tls_client_ca_file),
      TB_SETTING("token-file", token_file),
      TB_SETTING("metrics-listen", metrics_listen),
      TB_SETTING("native-listen", native_listen),
      TB_SETTING("native-sessions-max", native_sessions_max),
      TB_SETTING("native-connections-max", native_connections_max),
      TB_SETTING("native-write-queue-bytes-max", native_write_queue_bytes_max),
      TB_SETTING("native-write-queue-bytes-total-max", native_write_queue_bytes_total_max),
      TB_SETTING("drain-timeout", drain_timeout),
      TB_SETTING("busy-poll", busy_poll),
      TB_SETTING("log-level", log_level),
  };
  return *settings;
}

#undef TB_SETTING

absl::Status CheckRange(absl::string_view name, uint64_t value, uint64_t min, uint64_t max) {
  if (value < min || value > max) {
    return SettingError(name, absl::StrCat("must be ", min, "..", max, " (got ", value, ")"));
  }
  return absl::OkStatus();
}

absl::Status CheckReadable(absl::string_view name, const std::string& path) {
  if (path.empty()) return absl::OkStatus();
  FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) {
    return SettingError(name, absl::StrCat("cannot read ", path, ": ", std::strerror(errno)));
  }
  std::fclose(file);
  return absl::OkStatus();
}

}  // namespace

std::vector<std::string> ConfigSettingNames() {
  std::vector<std::string> names;
  for (const Setting& setting : Settings()) names.push_back(setting.name);
  return names;
}

absl::StatusOr<Config> ParseConfig(SettingLookup lookup) {
  Config config;
  for (const Setting& setting : Settings()) {
    std::optional<std::string> text = lookup(setting.name);
    if (!text.has_value()) continue;
    TB_RETURN_IF_ERROR(setting.apply(setting.name, *text, &config));
  }
  TB_RETURN_IF_ERROR(ValidateConfig(config));
  return config;
}

absl::Status ValidateConfig(const Config& config) {
  TB_RETURN_IF_ERROR(CheckRange("grpc-message-size-max", config.grpc_message_size_max,
                                kGrpcMessageSizeMaxFloor, kGrpcMessageSizeMaxCeiling));
  TB_RETURN_IF_ERROR(
      CheckRange("grpc-streams-max", config.grpc_streams_max, 1, kGrpcStreamsMaxCeiling));
  TB_RETURN_IF_ERROR(CheckRange("grpc-connections-max", config.grpc_connections_max, 1,
                                kGrpcConnectionsMaxCeiling));
  TB_RETURN_IF_ERROR(CheckRange("grpc-call-memory-max", config.grpc_call_memory_max,
                                kGrpcCallMemoryMaxFloor, kGrpcCallMemoryMaxCeiling));
  TB_RETURN_IF_ERROR(
      CheckRange("stream-calls-max", config.stream_calls_max, 1, kStreamCallsMaxCeiling));
  TB_RETURN_IF_ERROR(
      CheckRange("stream-rpcs-max", config.stream_rpcs_max, 1, kStreamRpcsMaxCeiling));
  if (config.keepalive_time < absl::Seconds(1) || config.keepalive_time > absl::Hours(24)) {
    return SettingError("keepalive-time", "must be 1s..24h");
  }
  if (config.keepalive_timeout < absl::Seconds(1) || config.keepalive_timeout > absl::Hours(1)) {
    return SettingError("keepalive-timeout", "must be 1s..1h");
  }
  TB_RETURN_IF_ERROR(
      CheckRange("cluster-addresses", config.cluster_addresses.size(), 0, kReplicaCountMax));
  TB_RETURN_IF_ERROR(CheckRange("sessions", config.sessions, 1, kSessionsMaxCeiling));
  TB_RETURN_IF_ERROR(
      CheckRange("session-budget", config.session_budget, config.sessions, kSessionsMaxCeiling));
  // The pool's floor: kSessionStuckTicksMin (2500) ticks of 10 ms, over two resend gaps.
  if (config.session_stuck_timeout < absl::Seconds(25) ||
      config.session_stuck_timeout > absl::Hours(1)) {
    return SettingError("session-stuck-timeout", "must be 25s..1h");
  }
  TB_RETURN_IF_ERROR(
      CheckRange("queued-events-max", config.queued_events_max, 1, kQueuedEventsMaxCeiling));
  TB_RETURN_IF_ERROR(
      CheckRange("queued-bytes-max", config.queued_bytes_max, 1, kQueuedBytesMaxCeiling));
  TB_RETURN_IF_ERROR(CheckRange("callers-max", config.callers_max, 1, kCallersMaxCeiling));
  if (config.tls_cert_file.empty() != config.tls_key_file.empty()) {
    return SettingError(config.tls_cert_file.empty() ? "tls-cert-file" : "tls-key-file",
                        "tls-cert-file and tls-key-file go together");
  }
  if (!config.tls_client_ca_file.empty() && config.tls_cert_file.empty()) {
    return SettingError("tls-client-ca-file", "mutual TLS needs tls-cert-file and tls-key-file");
  }
  TB_RETURN_IF_ERROR(CheckReadable("tls-cert-file", config.tls_cert_file));
  TB_RETURN_IF_ERROR(CheckReadable("tls-key-file", config.tls_key_file));
  TB_RETURN_IF_ERROR(CheckReadable("tls-client-ca-file", config.tls_client_ca_file));
  TB_RETURN_IF_ERROR(CheckReadable("token-file", config.token_file));
  TB_RETURN_IF_ERROR(
      CheckRange("native-sessions-max", config.native_sessions_max, 1, kNativeSessionsMaxCeiling));
  TB_RETURN_IF_ERROR(CheckRange("native-connections-max", config.native_connections_max, 1,
                                kNativeConnectionsMaxCeiling));
  TB_RETURN_IF_ERROR(CheckRange("native-write-queue-bytes-max", config.native_write_queue_bytes_max,
                                kNativeWriteQueueBytesMaxFloor, kNativeWriteQueueBytesMaxCeiling));
  TB_RETURN_IF_ERROR(CheckRange("native-write-queue-bytes-total-max",
                                config.native_write_queue_bytes_total_max,
                                kNativeWriteQueueBytesMaxFloor,
                                kNativeWriteQueueBytesTotalMaxCeiling));
  if (config.drain_timeout < absl::ZeroDuration() || config.drain_timeout > absl::Hours(1)) {
    return SettingError("drain-timeout", "must be 0s..1h");
  }
  if (config.busy_poll < absl::ZeroDuration() || config.busy_poll > absl::Milliseconds(1)) {
    return SettingError("busy-poll", "must be 0s..1ms");
  }
  return absl::OkStatus();
}

absl::StatusOr<Config> ConfigFromFlagsAndEnvironment() {
  return ParseConfig([](absl::string_view name) -> std::optional<std::string> {
    for (const Setting& setting : Settings()) {
      if (name != setting.name) continue;
      std::optional<std::string> from_flag = absl::GetFlag(*setting.flag);
      if (from_flag.has_value()) return from_flag;
      std::string variable = absl::StrCat("TBPROXY_", name);
      absl::StrReplaceAll({{"-", "_"}}, &variable);
      absl::AsciiStrToUpper(&variable);
      const char* value = std::getenv(variable.c_str());
      if (value != nullptr) return std::string(value);
      return std::nullopt;
    }
    return std::nullopt;
  });
}

}  // namespace tb::proxy
