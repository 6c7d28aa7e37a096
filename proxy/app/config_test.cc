#include "proxy/app/config.h"

#include <cstdlib>
#include <map>

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

ABSL_DECLARE_FLAG(std::optional<std::string>, sessions);
ABSL_DECLARE_FLAG(std::optional<std::string>, listen);

namespace tb::proxy {
namespace {

using ::testing::HasSubstr;

absl::StatusOr<Config> ParseMap(const std::map<std::string, std::string>& values) {
  return ParseConfig([&](absl::string_view name) -> std::optional<std::string> {
    auto it = values.find(std::string(name));
    if (it == values.end()) return std::nullopt;
    return it->second;
  });
}

TEST(Config, DefaultsAreValid) {
  absl::StatusOr<Config> config = ParseMap({});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->listen, (HostPort{"127.0.0.1", 50051}));
  EXPECT_FALSE(config->metrics_listen.has_value());
  EXPECT_FALSE(config->native_listen.has_value());
  EXPECT_EQ(config->native_connections_max, kNativeConnectionsMaxDefault);
  EXPECT_EQ(config->grpc_connections_max, kGrpcConnectionsMaxDefault);
  EXPECT_EQ(config->grpc_call_memory_max, kGrpcCallMemoryMaxDefault);
  EXPECT_EQ(config->stream_rpcs_max, kStreamRpcsMaxDefault);
  EXPECT_EQ(config->native_write_queue_bytes_max, kNativeWriteQueueBytesMaxDefault);
  EXPECT_EQ(config->native_write_queue_bytes_total_max, kNativeWriteQueueBytesTotalMaxDefault);
  EXPECT_TRUE(config->embedded_cluster());
  EXPECT_EQ(config->sessions, 4u);
  EXPECT_EQ(config->drain_timeout, absl::Seconds(15));
  EXPECT_EQ(config->busy_poll, absl::ZeroDuration());
  EXPECT_EQ(config->session_stuck_timeout, absl::Seconds(30));
}

TEST(Config, ParsesEveryKindOfValue) {
  absl::StatusOr<Config> config = ParseMap({
      {"listen", "0.0.0.0:0"},
      {"cluster-addresses", "127.0.0.1:3000,127.0.0.1:3001"},
      {"cluster-id", "0x10"},
      {"sessions", "6"},
      {"session-budget", "12"},
      {"session-stuck-timeout", "45s"},
      {"keepalive-time", "90s"},
      {"drain-timeout", "2m"},
      {"busy-poll", "50us"},
      {"log-level", "warning"},
      {"queued-bytes-max", "1048576"},
      {"stream-calls-max", "8"},
      {"stream-rpcs-max", "20000"},
      {"grpc-connections-max", "7"},
      {"grpc-call-memory-max", "33554432"},
      {"metrics-listen", "[::1]:9464"},
      {"native-listen", "127.0.0.1:0"},
      {"native-connections-max", "10"},
      {"native-write-queue-bytes-max", "2097152"},
      {"native-write-queue-bytes-total-max", "4194304"},
  });
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->listen, (HostPort{"0.0.0.0", 0}));
  EXPECT_EQ(config->metrics_listen, (HostPort{"::1", 9464}));
  EXPECT_EQ(config->native_listen, (HostPort{"127.0.0.1", 0}));
  EXPECT_EQ(config->native_connections_max, 10u);
  EXPECT_EQ(config->grpc_connections_max, 7u);
  EXPECT_EQ(config->grpc_call_memory_max, 33554432u);
  EXPECT_EQ(config->native_write_queue_bytes_max, 2097152u);
  EXPECT_EQ(config->native_write_queue_bytes_total_max, 4194304u);
  ASSERT_EQ(config->cluster_addresses.size(), 2u);
  EXPECT_EQ(config->cluster_addresses[1].port, 3001);
  EXPECT_EQ(config->cluster_id, 16u);
  EXPECT_EQ(config->sessions, 6u);
  EXPECT_EQ(config->session_budget, 12u);
  EXPECT_EQ(config->session_stuck_timeout, absl::Seconds(45));
  EXPECT_EQ(config->keepalive_time, absl::Seconds(90));
  EXPECT_EQ(config->drain_timeout, absl::Minutes(2));
  EXPECT_EQ(config->busy_poll, absl::Microseconds(50));
  EXPECT_EQ(config->log_level, LogLevel::kWarning);
  EXPECT_EQ(config->queued_bytes_max, 1048576u);
  EXPECT_EQ(config->stream_calls_max, 8u);
  EXPECT_EQ(config->stream_rpcs_max, 20000u);

  absl::StatusOr<Config> decimal = ParseMap({{"cluster-id", "340282366920938463463374607431768211455"}});
  ASSERT_TRUE(decimal.ok()) << decimal.status();
  EXPECT_EQ(decimal->cluster_id, kU128Max);
}

TEST(Config, ErrorsNameTheBadSetting) {
  const std::map<std::string, std::string> bad[] = {
      {{"sessions", "0"}},
      {{"sessions", "many"}},
      {{"sessions", "8"}, {"session-budget", "7"}},
      {{"session-budget", "64"}},
      {{"session-stuck-timeout", "20s"}},
      {{"session-stuck-timeout", "2h"}},
      {{"cluster-id", "340282366920938463463374607431768211456"}},
      {{"cluster-id", "0xg"}},
      {{"cluster-addresses", "127.0.0.1:0"}},
      {{"listen", "nowhere"}},
      {{"grpc-message-size-max", "10"}},
      {{"stream-calls-max", "0"}},
      {{"stream-rpcs-max", "0"}},
      {{"stream-rpcs-max", "100001"}},
      {{"grpc-connections-max", "0"}},
      {{"grpc-connections-max", "65537"}},
      {{"grpc-call-memory-max", "1048576"}},
      {{"keepalive-time", "soon"}},
      {{"tls-key-file", "/etc/hostname"}},
      {{"tls-cert-file", "/nonexistent.pem"}, {"tls-key-file", "/nonexistent.key"}},
      {{"tls-client-ca-file", "/etc/hostname"}},
      {{"token-file", "/nonexistent/tokens"}},
      {{"drain-timeout", "-1s"}},
      {{"busy-poll", "2ms"}},
      {{"busy-poll", "-1us"}},
      {{"log-level", "loud"}},
      {{"queued-events-max", "0"}},
      {{"cluster-addresses", "1,2,3,4,5,6,7"}},
      {{"listen", "::1:50051"}},
      {{"metrics-listen", "127.0.0.1:65536"}},
      {{"native-listen", ":3000"}},
      {{"native-connections-max", "0"}},
      {{"native-write-queue-bytes-max", "1024"}},
      {{"native-write-queue-bytes-total-max", "1024"}},
  };
  for (const auto& values : bad) {
    absl::StatusOr<Config> config = ParseMap(values);
    ASSERT_FALSE(config.ok()) << values.begin()->first << "=" << values.begin()->second;
    EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
    bool named = false;
    for (const auto& [name, value] : values) {
      named = named || absl::StrContains(config.status().message(), name);
    }
    EXPECT_TRUE(named) << config.status();
  }
}

TEST(Config, FlagWinsOverEnvironment) {
  ::setenv("TBPROXY_SESSIONS", "5", 1);
  ::setenv("TBPROXY_LISTEN", "127.0.0.1:7000", 1);
  absl::SetFlag(&FLAGS_sessions, std::optional<std::string>("3"));
  absl::StatusOr<Config> config = ConfigFromFlagsAndEnvironment();
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->sessions, 3u);               // Flag.
  EXPECT_EQ(config->listen, (HostPort{"127.0.0.1", 7000}));  // Environment.
  absl::SetFlag(&FLAGS_sessions, std::nullopt);
  config = ConfigFromFlagsAndEnvironment();
  ASSERT_TRUE(config.ok());
  EXPECT_EQ(config->sessions, 5u);
  ::setenv("TBPROXY_SESSIONS", "zero", 1);
  EXPECT_THAT(ConfigFromFlagsAndEnvironment().status().message(), HasSubstr("sessions"));
  ::unsetenv("TBPROXY_SESSIONS");
  ::unsetenv("TBPROXY_LISTEN");
}

TEST(Config, HelpStatesTheDefaultsOfADefaultConfig) {
  const Config defaults;
  const std::pair<const char*, std::string> expected[] = {
      {"listen", "Default 127.0.0.1:50051."},
      {"sessions", absl::StrCat("Default ", defaults.sessions, ".")},
      {"keepalive_time", "Default 60s."},
      {"drain_timeout", "Default 15s."},
      {"native_connections_max", absl::StrCat("Default ", kNativeConnectionsMaxDefault, ".")},
      {"stream_rpcs_max", absl::StrCat("Default ", kStreamRpcsMaxDefault, ".")},
      {"grpc_connections_max", absl::StrCat("Default ", kGrpcConnectionsMaxDefault, ".")},
      {"grpc_call_memory_max", absl::StrCat("Default ", kGrpcCallMemoryMaxDefault, ".")},
      {"native_write_queue_bytes_max", "Default 67108864."},
      {"cluster_id", "Default 0."},
      {"log_level", "Default info."},
  };
  for (const auto& [flag, text] : expected) {
    const absl::CommandLineFlag* found = absl::FindCommandLineFlag(flag);
    ASSERT_NE(found, nullptr) << flag;
    EXPECT_THAT(found->Help(), HasSubstr(text)) << flag;
  }
}

TEST(Config, EverySettingHasAName) {
  EXPECT_THAT(ConfigSettingNames(), ::testing::Contains("cluster-addresses"));
  EXPECT_EQ(ConfigSettingNames().size(), 30u);
}

}  // namespace
}  // namespace tb::proxy
