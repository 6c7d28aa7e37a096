#include "proxy/app/config.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "absl/flags/flag.h"
#include "absl/flags/marshalling.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "client_core/status_macros.h"
#include "proxy/coalescer/coalescer_options.h"

// Every setting is an optional string flag: "not given" must be distinguishable from "given
// with the default value", so that the environment applies only when the flag is absent. The
// text is parsed (with absl's own flag marshalling) in one place, ParseConfig, for both sources.
#define TB_SETTING_FLAG(name, help) \
  ABSL_FLAG(std::optional<std::string>, name, std::nullopt, help)

TB_SETTING_FLAG(listen, "gRPC listen address host:port (port 0: any free port). "
                        "Default 127.0.0.1:50051. Env TBPROXY_LISTEN.");
TB_SETTING_FLAG(grpc_message_size_max, "Largest gRPC message received or sent, bytes. "
                                       "Default 16777216.");
TB_SETTING_FLAG(grpc_streams_max, "Concurrent HTTP/2 streams per client connection. "
                                  "Default 1000.");
TB_SETTING_FLAG(stream_calls_max, "Calls in flight on one Stream RPC before the proxy stops "
                                  "reading it. Default 64.");
TB_SETTING_FLAG(keepalive_time, "Ping an idle client connection after this long. Default 60s.");
TB_SETTING_FLAG(keepalive_timeout, "Close a connection whose ping is unanswered this long. "
                                   "Default 20s.");
TB_SETTING_FLAG(cluster_addresses, "TigerBeetle replicas host:port,... in the cluster's order. "
                                   "Empty: start an embedded in-memory dev cluster (NOT "
                                   "durable). Default empty.");
TB_SETTING_FLAG(cluster_id, "Cluster id, decimal or 0x-hex u128. Default 0.");
TB_SETTING_FLAG(sessions, "Cluster sessions kept registered (1 request in flight each). "
                          "Default 4.");
TB_SETTING_FLAG(session_budget, "Cluster session slots tbproxy may hold, replacements "
                                "included (sessions..63). Default 8.");
TB_SETTING_FLAG(queued_events_max, "Events waiting for a session, at most. Default 1000000.");
TB_SETTING_FLAG(queued_bytes_max, "Event bytes waiting for a session, at most. "
                                  "Default 268435456.");
TB_SETTING_FLAG(callers_max, "Calls queued or in flight, at most. Default 100000.");
TB_SETTING_FLAG(tls_cert_file, "PEM certificate chain: serve gRPC over TLS.");
TB_SETTING_FLAG(tls_key_file, "PEM private key of --tls-cert-file.");
TB_SETTING_FLAG(tls_client_ca_file, "PEM CA bundle: require client certificates (mutual TLS).");
TB_SETTING_FLAG(token_file, "Bearer token file (name:read|write:sha256:<hex> per line): "
                            "require tokens.");
TB_SETTING_FLAG(metrics_listen, "Prometheus /metrics, /healthz, /readyz on host:port. "
                                "Empty: off.");
TB_SETTING_FLAG(native_listen, "TigerBeetle-protocol listener host:port for official "
                               "TigerBeetle clients, e.g. 127.0.0.1:3000. Empty: off.");
TB_SETTING_FLAG(native_sessions_max, "Virtual sessions of native clients (1..65536); the least "
                                     "recently committed is evicted. Default 10000.");
TB_SETTING_FLAG(drain_timeout, "On SIGTERM/SIGINT, wait this long for calls in flight. "
                               "Default 15s.");
TB_SETTING_FLAG(busy_poll, "After its last event, the cluster-session thread polls this long "
                           "before sleeping: lower latency at light load for up to one CPU "
                           "(0s..1ms). Default 0s: off.");
TB_SETTING_FLAG(log_level, "debug, info, warning or error. Default info.");

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

absl::Status ParseU128Text(absl::string_view name, absl::string_view text, u128* out) {
  const bool hex = absl::StartsWith(text, "0x") || absl::StartsWith(text, "0X");
  absl::string_view digits = hex ? text.substr(2) : text;
  if (digits.empty() || digits.size() > (hex ? 32u : 39u)) {
    return SettingError(name, absl::StrCat("not a u128: \"", text, "\""));
  }
  u128 value = 0;
  for (char c : digits) {
    const int digit = absl::ascii_isdigit(static_cast<unsigned char>(c)) ? c - '0'
                      : hex && absl::ascii_isxdigit(static_cast<unsigned char>(c))
                          ? absl::ascii_tolower(static_cast<unsigned char>(c)) - 'a' + 10
                          : -1;
    if (digit < 0) return SettingError(name, absl::StrCat("not a u128: \"", text, "\""));
    const u128 base = hex ? 16 : 10;
    if (value > (kU128Max - static_cast<u128>(digit)) / base) {
      return SettingError(name, "u128 overflow");
    }
    value = value * base + static_cast<u128>(digit);
  }
  *out = value;
  return absl::OkStatus();
}

struct Setting {
  const char* name;  // Dashed: "cluster-addresses".
  const StringFlag* flag;
  absl::Status (*apply)(absl::string_view name, absl::string_view text, Config* config);
};

#define TB_FIELD_SETTING(dashed, flag_name, field)                                     \
  Setting {                                                                            \
    dashed, &FLAGS_##flag_name,                                                        \
        [](absl::string_view name, absl::string_view text, Config* config) {           \
          return ParseValue(name, text, &config->field);                               \
        }                                                                              \
  }

const std::vector<Setting>& Settings() {
  static const auto* settings = new std::vector<Setting>{
      TB_FIELD_SETTING("listen", listen, listen),
      TB_FIELD_SETTING("grpc-message-size-max", grpc_message_size_max, grpc_message_size_max),
      TB_FIELD_SETTING("grpc-streams-max", grpc_streams_max, grpc_streams_max),
      TB_FIELD_SETTING("stream-calls-max", stream_calls_max, stream_calls_max),
      TB_FIELD_SETTING("keepalive-time", keepalive_time, keepalive_time),
      TB_FIELD_SETTING("keepalive-timeout", keepalive_timeout, keepalive_timeout),
      Setting{"cluster-addresses", &FLAGS_cluster_addresses,
              [](absl::string_view name, absl::string_view text, Config* config) {
                config->cluster_addresses.clear();
                if (absl::StripAsciiWhitespace(text).empty()) return absl::OkStatus();
                absl::StatusOr<std::vector<ReplicaAddress>> addresses = ParseAddresses(text);
                if (!addresses.ok()) return SettingError(name, addresses.status().message());
                config->cluster_addresses = *std::move(addresses);
                return absl::OkStatus();
              }},
      Setting{"cluster-id", &FLAGS_cluster_id,
              [](absl::string_view name, absl::string_view text, Config* config) {
                return ParseU128Text(name, text, &config->cluster_id);
              }},
      TB_FIELD_SETTING("sessions", sessions, sessions),
      TB_FIELD_SETTING("session-budget", session_budget, session_budget),
      TB_FIELD_SETTING("queued-events-max", queued_events_max, queued_events_max),
      TB_FIELD_SETTING("queued-bytes-max", queued_bytes_max, queued_bytes_max),
      TB_FIELD_SETTING("callers-max", callers_max, callers_max),
      TB_FIELD_SETTING("tls-cert-file", tls_cert_file, tls_cert_file),
      TB_FIELD_SETTING("tls-key-file", tls_key_file, tls_key_file),
      TB_FIELD_SETTING("tls-client-ca-file", tls_client_ca_file, tls_client_ca_file),
      TB_FIELD_SETTING("token-file", token_file, token_file),
      TB_FIELD_SETTING("metrics-listen", metrics_listen, metrics_listen),
      TB_FIELD_SETTING("native-listen", native_listen, native_listen),
      TB_FIELD_SETTING("native-sessions-max", native_sessions_max, native_sessions_max),
      TB_FIELD_SETTING("drain-timeout", drain_timeout, drain_timeout),
      TB_FIELD_SETTING("busy-poll", busy_poll, busy_poll),
      Setting{"log-level", &FLAGS_log_level,
              [](absl::string_view name, absl::string_view text, Config* config) {
                if (ParseLogLevel(text, &config->log_level)) return absl::OkStatus();
                return SettingError(name, "must be debug, info, warning or error");
              }},
  };
  return *settings;
}

#undef TB_FIELD_SETTING

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

absl::Status CheckHostPort(absl::string_view name, const std::string& address) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == address.size()) {
    return SettingError(name, absl::StrCat("expected host:port, got \"", address, "\""));
  }
  uint32_t port = 0;
  if (!absl::SimpleAtoi(address.substr(colon + 1), &port) || port > 65535) {
    return SettingError(name, absl::StrCat("bad port in \"", address, "\""));
  }
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
  TB_RETURN_IF_ERROR(CheckHostPort("listen", config.listen));
  TB_RETURN_IF_ERROR(CheckRange("grpc-message-size-max", config.grpc_message_size_max,
                                kGrpcMessageSizeMin, kGrpcMessageSizeMax));
  TB_RETURN_IF_ERROR(CheckRange("grpc-streams-max", config.grpc_streams_max, 1, kGrpcStreamsMax));
  TB_RETURN_IF_ERROR(CheckRange("stream-calls-max", config.stream_calls_max, 1, kStreamCallsMax));
  if (config.keepalive_time < absl::Seconds(1) || config.keepalive_time > absl::Hours(24)) {
    return SettingError("keepalive-time", "must be 1s..24h");
  }
  if (config.keepalive_timeout < absl::Seconds(1) || config.keepalive_timeout > absl::Hours(1)) {
    return SettingError("keepalive-timeout", "must be 1s..1h");
  }
  TB_RETURN_IF_ERROR(CheckRange("sessions", config.sessions, 1, kSessionsMax));
  TB_RETURN_IF_ERROR(
      CheckRange("session-budget", config.session_budget, config.sessions, kSessionsMax));
  TB_RETURN_IF_ERROR(CheckRange("queued-events-max", config.queued_events_max, 1,
                                kQueuedEventsMaxCeiling));
  TB_RETURN_IF_ERROR(CheckRange("queued-bytes-max", config.queued_bytes_max, 1,
                                kQueuedBytesMaxCeiling));
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
  if (!config.metrics_listen.empty()) {
    TB_RETURN_IF_ERROR(CheckHostPort("metrics-listen", config.metrics_listen));
  }
  if (!config.native_listen.empty()) {
    TB_RETURN_IF_ERROR(CheckHostPort("native-listen", config.native_listen));
  }
  TB_RETURN_IF_ERROR(
      CheckRange("native-sessions-max", config.native_sessions_max, 1, kNativeSessionsMax));
  {
  }
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

void NormalizeFlagNames(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    char* argument = argv[i];
    if (std::strcmp(argument, "--") == 0) return;
    if (argument[0] != '-') continue;
    char* name = argument + (argument[1] == '-' ? 2 : 1);
    for (char* c = name; *c != '\0' && *c != '='; ++c) {
      if (*c == '-') *c = '_';
    }
  }
}

}  // namespace tb::proxy
