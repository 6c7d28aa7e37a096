// tbproxy: gRPC in front, a few persistent TigerBeetle sessions behind.
//
// main wires small parts together and owns their order of start and stop:
//   config -> [embedded dev cluster] -> coalescer -> session pool -> gRPC server [-> metrics]
// and on SIGTERM/SIGINT drains in the reverse direction: the gRPC server stops accepting, the
// coalescer stops intake and sends what is queued, the pool waits for replies in flight, then
// everything closes. Exit code 0 after a clean drain, 1 on a start-up failure, 2 on bad config.
#include <pthread.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <memory>
#include <optional>
#include <thread>

#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/numbers.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "asio.hpp"
#include "client_core/u128.h"
#include "pool/session_pool.h"
#include "proxy/coalescer/coalescer.h"
#include "proxy/app/config.h"
#include "proxy/app/embedded_cluster.h"
#include "proxy/grpc/grpc_auth.h"
#include "proxy/grpc/grpc_server.h"
#include "proxy/grpc/grpc_service.h"
#include "proxy/app/io_loop.h"
#include "proxy/log/log.h"
#include "proxy/metrics/metrics.h"
#include "proxy/metrics/metrics_http.h"
#include "proxy/metrics/metrics_observers.h"
#include "proxy/native/native_frontend.h"

namespace tb::proxy {
namespace {

constexpr char kVersion[] = "0.1.0";
constexpr absl::Duration kDeadlineSweepInterval = absl::Milliseconds(10);
// How long after the drain deadline gRPC waits before cancelling open calls: more than the
// pool's minimum drain time (1 s below), so that calls are finished with their outcome first.
constexpr absl::Duration kDrainFinishMargin = absl::Seconds(3);

std::string AddressList(const std::vector<ReplicaAddress>& addresses) {
  return absl::StrJoin(addresses, ",", [](std::string* out, const ReplicaAddress& address) {
    out->append(ReplicaAddressToString(address));
  });
}

// Answers callers whose deadline passed while queued or in flight, on the pool's thread.
void ScheduleDeadlineSweep(asio::steady_timer& timer, Coalescer& coalescer) {
  timer.expires_after(absl::ToChronoNanoseconds(kDeadlineSweepInterval));
  timer.async_wait([&timer, &coalescer](asio::error_code error) {
    if (error) return;
    coalescer.ExpireDeadlines(absl::Now());
    ScheduleDeadlineSweep(timer, coalescer);
  });
}

GrpcServerOptions ServerOptionsFrom(const Config& config) {
  GrpcServerOptions options;
  options.listen_address = config.listen;
  options.tls = {.certificate_file = config.tls_cert_file,
                 .private_key_file = config.tls_key_file,
                 .client_ca_file = config.tls_client_ca_file};
  options.message_size_max_bytes = static_cast<int>(config.grpc_message_size_max);
  options.streams_max = static_cast<int>(config.grpc_streams_max);
  options.keepalive_time = config.keepalive_time;
  options.keepalive_timeout = config.keepalive_timeout;
  return options;
}

// --native-listen=host:port (validated by ValidateConfig; IPv6 hosts may be bracketed).
absl::StatusOr<std::unique_ptr<NativeFrontend>> StartNativeFrontend(const Config& config,
                                                                    Submitter* submitter) {
  const std::string& listen = config.native_listen;
  const size_t colon = listen.rfind(':');
  if (colon == std::string::npos) {
    return absl::InvalidArgumentError("native-listen: expected host:port");
  }
  std::string host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty()) host = "127.0.0.1";  // Loopback unless an address is given explicitly.
  uint32_t port = 0;
  if (!absl::SimpleAtoi(listen.substr(colon + 1), &port) || port > 65535) {
    return absl::InvalidArgumentError("native-listen: bad port");
  }
  return NativeFrontend::Start({.host = host,
                                .port = static_cast<uint16_t>(port),
                                .cluster = config.cluster_id,
                                .sessions_max = config.native_sessions_max},
                               submitter);
}

int WaitForStopSignal(const sigset_t& signals) {
  int signal = 0;
  sigwait(&signals, &signal);
  return signal;
}

int Run(const Config& config, const sigset_t& stop_signals) {
  std::optional<TokenAuthenticator> tokens;
  if (!config.token_file.empty()) {
    absl::StatusOr<TokenAuthenticator> parsed = TokenAuthenticator::FromFile(config.token_file);
    if (!parsed.ok()) {
      Log(LogLevel::kError, "config_invalid", {{"error", std::string(parsed.status().message())}});
      return 2;
    }
    tokens = *std::move(parsed);
    Log(LogLevel::kInfo, "bearer_identities_loaded", {{"count", absl::StrCat(tokens->size())}});
  }

  std::unique_ptr<EmbeddedCluster> embedded;
  std::vector<ReplicaAddress> replicas = config.cluster_addresses;
  if (config.embedded_cluster()) {
    absl::StatusOr<std::unique_ptr<EmbeddedCluster>> started =
        EmbeddedCluster::Start(config.cluster_id);
    if (!started.ok()) {
      Log(LogLevel::kError, "embedded_cluster_failed",
          {{"error", std::string(started.status().message())}});
      return 1;
    }
    embedded = *std::move(started);
    replicas = embedded->addresses();
    Log(LogLevel::kWarning, "embedded_dev_cluster",
        {{"detail",
          "NO --cluster-addresses: USING AN EMBEDDED IN-MEMORY DEV CLUSTER. DATA IS NOT "
          "DURABLE AND IS LOST WHEN TBPROXY STOPS. NEVER USE THIS FOR REAL MONEY."},
         {"addresses", AddressList(replicas)}});
  }

  Metrics metrics({.version = kVersion});
  CoalescerMetricsObserver coalescer_observer(metrics);
  PoolMetricsObserver pool_observer(metrics);
  Coalescer coalescer(CoalescerOptions{.queued_events_max = config.queued_events_max,
                                       .queued_bytes_max = config.queued_bytes_max,
                                       .callers_max = config.callers_max,
                                       .observer = &coalescer_observer});
  SampleCoalescerOnScrape(metrics, coalescer);

  asio::io_context pool_io(1);
  absl::StatusOr<std::unique_ptr<pool::SessionPool>> pool = pool::SessionPool::Create(
      pool_io,
      {.cluster = config.cluster_id,
       .replica_addresses = replicas,
       .sessions = config.sessions,
       .session_budget = config.session_budget},
      &coalescer, &pool_observer);
  if (!pool.ok()) {
    Log(LogLevel::kError, "config_invalid", {{"error", std::string(pool.status().message())}});
    return 2;
  }
  metrics.SetSessionBudget(config.session_budget);
  // The native front end announces the smallest registered session's limit to its clients.
  std::atomic<uint32_t> native_limit{0};
  std::atomic<NativeFrontend*> native_raw{nullptr};
  (*pool)->SetBatchSizeLimitCallback([&coalescer, &native_limit, &native_raw](uint32_t limit) {
    (void)coalescer.SetBatchSizeLimit(limit);
    native_limit = limit;
    if (NativeFrontend* native = native_raw.load()) native->SetBatchSizeLimit(limit);
  });
  coalescer.SetWake([raw = pool->get()] { raw->Wake(); });
  asio::steady_timer sweep_timer(pool_io);
  ScheduleDeadlineSweep(sweep_timer, coalescer);
  auto work = asio::make_work_guard(pool_io);
  (*pool)->Start();
  std::thread pool_thread([&pool_io, &config] { RunIoContext(pool_io, config.busy_poll); });

  MeteredSubmitter submitter(coalescer, metrics);
  GrpcService service(submitter, {.stream_calls_max = config.stream_calls_max,
                                  .authenticator = tokens ? &*tokens : nullptr});
  GrpcServerOptions server_options = ServerOptionsFrom(config);
  server_options.readiness = [raw = pool->get()] { return raw->ready(); };
  absl::StatusOr<std::unique_ptr<GrpcServer>> server = GrpcServer::Start(server_options, &service);

  std::unique_ptr<MetricsHttpServer> metrics_http;
  absl::Status started = server.status();
  if (started.ok() && !config.metrics_listen.empty()) {
    absl::StatusOr<std::unique_ptr<MetricsHttpServer>> http = MetricsHttpServer::Start(
        {.address = config.metrics_listen}, [&metrics] { return metrics.Exposition(); },
        [raw = pool->get()] { return raw->ready(); });
    if (http.ok()) {
      metrics_http = *std::move(http);
      Log(LogLevel::kInfo, "metrics_listening", {{"port", absl::StrCat(metrics_http->port())}});
    } else {
      started = http.status();
    }
  }

  std::unique_ptr<NativeFrontend> native;
  if (started.ok() && !config.native_listen.empty()) {
    absl::StatusOr<std::unique_ptr<NativeFrontend>> listening =
        StartNativeFrontend(config, &submitter);
    if (listening.ok()) {
      native = *std::move(listening);
      native_raw = native.get();
      if (const uint32_t limit = native_limit.load(); limit != 0) native->SetBatchSizeLimit(limit);
      Log(LogLevel::kInfo, "native_listening",
          {{"address", config.native_listen}, {"port", absl::StrCat(native->port())},
           {"sessions_max", absl::StrCat(config.native_sessions_max)}});
      // Tests and scripts read the native port from this line (stdout).
      std::printf("tbproxy native listening on port %d\n", native->port());
      std::fflush(stdout);
    } else {
      started = listening.status();
    }
  }

  int exit_code = 0;
  if (started.ok()) {
    Log(LogLevel::kInfo, "listening",
        {{"address", config.listen},
         {"port", absl::StrCat((*server)->port())},
         {"tls", config.tls_cert_file.empty() ? "off" : config.tls_client_ca_file.empty()
                                                            ? "on"
                                                            : "mutual"},
         {"authentication", tokens ? "bearer" : "off"},
         {"cluster", U128ToDecimal(config.cluster_id)},
         {"replicas", AddressList(replicas)},
         {"sessions", absl::StrCat(config.sessions)},
         {"busy_poll", absl::FormatDuration(config.busy_poll)}});
    // Tests and scripts read the port from this line (stdout, one line).
    std::printf("tbproxy listening on port %d\n", (*server)->port());
    std::fflush(stdout);
    const int signal = WaitForStopSignal(stop_signals);
    Log(LogLevel::kInfo, "draining", {{"signal", absl::StrCat(signal)},
                                      {"timeout", absl::FormatDuration(config.drain_timeout)}});
  } else {
    Log(LogLevel::kError, "start_failed", {{"error", std::string(started.message())}});
    exit_code = 1;
  }

  // Drain: stop accepting calls, send what is queued, wait for replies in flight.
  const absl::Time drain_deadline = absl::Now() + config.drain_timeout;
  std::thread server_stop;
  if (server.ok()) {
    // gRPC cancels the calls still open at its deadline, without our outcome metadata. Give it
    // a later one, so that the pool below fails what is in flight first (outcome unknown) and
    // every call is finished by us.
    server_stop = std::thread(
        [&] { (*server)->Shutdown(drain_deadline + kDrainFinishMargin); });
  }
  coalescer.Close();
  while (!coalescer.drained() && absl::Now() < drain_deadline) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  if (!coalescer.drained()) {
    Log(LogLevel::kWarning, "drain_timeout", {{"detail", "queued calls fail with UNAVAILABLE"}});
    coalescer.FailQueued();
  }
  absl::Notification pool_drained;
  (*pool)->Drain(std::max(drain_deadline - absl::Now(), absl::Seconds(1)),
                 [&pool_drained] { pool_drained.Notify(); });
  pool_drained.WaitForNotification();
  if (server_stop.joinable()) server_stop.join();
  metrics_http.reset();
  work.reset();
  pool_io.stop();
  pool_thread.join();
  if (native != nullptr) {
    // Every Submit callback has run (the pool drained and its thread ended).
    native->Stop();
    const NativeFrontendStats stats = native->stats();
    Log(LogLevel::kInfo, "native_stopped",
        {{"virtual_sessions", absl::StrCat(stats.sessions)},
         {"replies", absl::StrCat(stats.replies)},
         {"evictions", absl::StrCat(stats.evictions)},
         {"drops", absl::StrCat(stats.drops)},
         {"closes", absl::StrCat(stats.closes)},
         {"cluster_sessions", absl::StrCat(config.sessions)}});
    native_raw = nullptr;
  }
  pool->reset();  // Before the coalescer: no on_done may run after it is gone.
  native.reset();  // After the pool: a call it still fails may reach the native executor.
  if (embedded != nullptr) embedded->Stop();
  Log(LogLevel::kInfo, "stopped", {{"exit_code", absl::StrCat(exit_code)}});
  return exit_code;
}

}  // namespace
}  // namespace tb::proxy

int main(int argc, char** argv) {
  // Debian's Abseil records every Mutex acquisition in a lock graph to find deadlock cycles (a
  // debugging aid; gRPC's own mutexes are absl::Mutex too). That bookkeeping was ~5 % of the
  // CPU on the call path (bench/PROFILE.md); the unit tests keep it on.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  // Block the stop signals in every thread (threads inherit the mask), so that only the
  // sigwait in Run receives them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  absl::SetProgramUsageMessage(
      "tbproxy: gRPC front end that coalesces many applications' TigerBeetle calls into full "
      "batches over a few sessions.\nEvery flag is also read from TBPROXY_<NAME> (flag wins). "
      "Without --cluster-addresses an in-memory, NOT durable, dev cluster is started.");
  // --help lists the flags of the files that define tbproxy's settings (Abseil's default is
  // only files named after the binary's main).
  absl::FlagsUsageConfig usage;
  usage.contains_help_flags = [](absl::string_view file) {
    return absl::StrContains(file, "proxy/app/config.cc") ||
           absl::StrContains(file, "proxy/app/main.cc");
  };
  absl::SetFlagsUsageConfig(usage);
  tb::proxy::NormalizeFlagNames(argc, argv);
  absl::ParseCommandLine(argc, argv);
  absl::StatusOr<tb::proxy::Config> config = tb::proxy::ConfigFromFlagsAndEnvironment();
  if (!config.ok()) {
    tb::proxy::Log(tb::proxy::LogLevel::kError, "config_invalid",
                   {{"error", std::string(config.status().message())}});
    return 2;
  }
  tb::proxy::SetLogLevel(config->log_level);
  return tb::proxy::Run(*config, stop_signals);
}
