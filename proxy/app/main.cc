// tbproxy: gRPC in front, a few persistent TigerBeetle sessions behind.
//
// main wires small parts together and owns their order of start and stop. Each step below is
// one function whose locals are the parts it starts, declared in the order they are built, so
// that C++ destroys them in the reverse order shutdown needs:
//   Run:       tokens, [embedded dev cluster] -> RunProxy
//   RunProxy:  metrics and coalescer, native front end, session pool, pool thread -> Serve
//   Serve:     gRPC server, metrics listener; wait for SIGTERM/SIGINT; Drain
// The drain runs the other way: the gRPC front end refuses new calls, the coalescer stops intake
// and sends what is queued, the pool waits for replies in flight, the gRPC server stops, then
// everything closes. Exit code
// 0 after a clean drain, 1 on a start-up failure, 2 on bad config.
//
// Threads tbproxy starts itself (gRPC's and civetweb's pools are their libraries' own):
//   main          parses config, waits for the stop signal, runs the drain.
//   tb-pool       the session pool's io_context: sessions, deadline sweep, completions, and the
//                 native front end (--native-listen), so a native call crosses no thread.
//   tb-grpc-stop  gRPC's Shutdown blocks until calls finish, which needs main to refuse held calls.
//   tb-grpc-ready GrpcServer's poller: copies the pool's readiness into gRPC's health service.
//   tb-devcluster the embedded dev cluster (only without --cluster-addresses).
#include <pthread.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <memory>
#include <optional>
#include <thread>

#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "asio.hpp"
#include "client_core/parse.h"
#include "client_core/u128.h"
#include "pool/session_pool.h"
#include "proxy/app/config.h"
#include "proxy/app/embedded_cluster.h"
#include "proxy/app/fd_limit.h"
#include "proxy/app/io_loop.h"
#include "proxy/app/memory_release.h"
#include "proxy/coalescer/coalescer.h"
#include "proxy/constants.h"
#include "proxy/grpc/grpc_auth.h"
#include "proxy/grpc/grpc_drain.h"
#include "proxy/grpc/grpc_server.h"
#include "proxy/grpc/grpc_service.h"
#include "proxy/log/log.h"
#include "proxy/metrics/metrics.h"
#include "proxy/metrics/metrics_http.h"
#include "proxy/metrics/metrics_observers.h"
#include "proxy/native/native_frontend.h"

namespace tb::proxy {
namespace {

constexpr char kVersion[] = "0.1.0";

void NameThisThread(const char* name) { pthread_setname_np(pthread_self(), name); }

std::string AddressList(const std::vector<ReplicaAddress>& addresses) {
  return absl::StrJoin(addresses, ",", [](std::string* out, const ReplicaAddress& address) {
    out->append(HostPortToString(address));
  });
}

void LogError(absl::string_view event, const absl::Status& status) {
  Log(LogLevel::kError, event, {{"error", std::string(status.message())}});
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

absl::StatusOr<std::optional<TokenAuthenticator>> LoadTokens(const Config& config) {
  if (config.token_file.empty()) return std::nullopt;
  absl::StatusOr<TokenAuthenticator> tokens = TokenAuthenticator::FromFile(config.token_file);
  if (!tokens.ok()) return tokens.status();
  Log(LogLevel::kInfo, "bearer_identities_loaded", {{"count", absl::StrCat(tokens->size())}});
  return std::optional<TokenAuthenticator>(*std::move(tokens));
}

// Null when --cluster-addresses are given.
absl::StatusOr<std::unique_ptr<EmbeddedCluster>> StartEmbeddedCluster(const Config& config) {
  if (!config.embedded_cluster()) return nullptr;
  absl::StatusOr<std::unique_ptr<EmbeddedCluster>> embedded =
      EmbeddedCluster::Start(config.cluster_id);
  if (!embedded.ok()) return embedded.status();
  Log(LogLevel::kWarning, "embedded_dev_cluster",
      {{"detail",
        "NO --cluster-addresses: USING AN EMBEDDED IN-MEMORY DEV CLUSTER. DATA IS NOT "
        "DURABLE AND IS LOST WHEN TBPROXY STOPS. NEVER USE THIS FOR REAL MONEY."},
       {"addresses", AddressList((*embedded)->addresses())}});
  return embedded;
}

// What every front end submits through: built before them and destroyed after them.
struct Core {
  explicit Core(const Config& config)
      : metrics({.version = kVersion}),
        coalescer_observer(metrics),
        pool_observer(metrics),
        coalescer(CoalescerOptions{.queued_events_max = config.queued_events_max,
                                   .queued_bytes_max = config.queued_bytes_max,
                                   .callers_max = config.callers_max,
                                   .observer = &coalescer_observer}),
        grpc_submitter(coalescer, metrics, Frontend::kGrpc),
        native_submitter(coalescer, metrics, Frontend::kNative) {
    SampleCoalescerOnScrape(metrics, coalescer);
  }

  Metrics metrics;
  CoalescerMetricsObserver coalescer_observer;
  PoolMetricsObserver pool_observer;
  Coalescer coalescer;
  // One per front end, so the per-call series carry the `frontend` label.
  MeteredSubmitter grpc_submitter;
  MeteredSubmitter native_submitter;
};

// Null without --native-listen. Every message is dropped until the pool reports its limit.
// It runs on the pool's io_context.
absl::StatusOr<std::unique_ptr<NativeFrontend>> StartNativeFrontend(const Config& config,
                                                                    Submitter* submitter,
                                                                    asio::io_context& pool_io) {
  if (!config.native_listen.has_value()) return nullptr;
  absl::StatusOr<std::unique_ptr<NativeFrontend>> native =
      NativeFrontend::Start(pool_io,
                            {.host = config.native_listen->host,
                             .port = config.native_listen->port,
                             .cluster = config.cluster_id,
                             .sessions_max = config.native_sessions_max,
                             .connections_max = config.native_connections_max,
                             .write_queue_bytes_max = config.native_write_queue_bytes_max,
                             .write_queue_bytes_total_max =
                                 config.native_write_queue_bytes_total_max},
                            submitter);
  if (!native.ok()) return native.status();
  Log(LogLevel::kInfo, "native_listening",
      {{"address", HostPortToString(*config.native_listen)},
       {"port", absl::StrCat((*native)->port())},
       {"sessions_max", absl::StrCat(config.native_sessions_max)}});
  // Tests and scripts read the native port from this line (stdout).
  std::printf("tbproxy native listening on port %d\n", (*native)->port());
  std::fflush(stdout);
  return native;
}

void StopNativeFrontend(NativeFrontend& native, const Config& config) {
  native.Stop();
  const NativeFrontendStats stats = native.stats();
  Log(LogLevel::kInfo, "native_stopped",
      {{"virtual_sessions", absl::StrCat(stats.sessions)},
       {"replies", absl::StrCat(stats.replies)},
       {"evictions", absl::StrCat(stats.evictions)},
       {"drops", absl::StrCat(stats.drops)},
       {"closes", absl::StrCat(stats.closes)},
       {"cluster_sessions", absl::StrCat(config.sessions)}});
}

// `native` (may be null) must outlive the pool: it learns each new batch size limit.
absl::StatusOr<std::unique_ptr<pool::SessionPool>> CreatePool(
    asio::io_context& pool_io, const Config& config, const std::vector<ReplicaAddress>& replicas,
    Core& core, NativeFrontend* native) {
  absl::StatusOr<std::unique_ptr<pool::SessionPool>> pool =
      pool::SessionPool::Create(pool_io,
                                {.cluster = config.cluster_id,
                                 .replica_addresses = replicas,
                                 .sessions = config.sessions,
                                 .session_budget = config.session_budget,
                                 .session_stuck_timeout = config.session_stuck_timeout},
                                &core.coalescer, &core.pool_observer);
  if (!pool.ok()) return pool.status();
  core.metrics.SetSessionBudget(config.session_budget);
  // Calls are validated against the smallest registered session's limit, and the native front
  // end announces it to its clients.
  (*pool)->SetBatchSizeLimitCallback([&coalescer = core.coalescer, native](uint32_t limit) {
    (void)coalescer.SetBatchSizeLimit(limit);
    if (native != nullptr) native->SetBatchSizeLimit(limit);
  });
  core.coalescer.SetWake([raw = pool->get()] { raw->Wake(); });
  return pool;
}

// The pool's thread, tb-pool: runs the sessions, the deadline sweep and every completion.
class PoolThread {
 public:
  PoolThread(asio::io_context& pool_io, Coalescer& coalescer, absl::Duration busy_poll)
      : pool_io_(pool_io), sweep_timer_(pool_io), work_(asio::make_work_guard(pool_io)) {
    ScheduleDeadlineSweep(sweep_timer_, coalescer);
    thread_ = std::thread([this, busy_poll] {
      NameThisThread("tb-pool");
      RunIoContext(pool_io_, busy_poll);
    });
  }
  ~PoolThread() { Join(); }
  PoolThread(const PoolThread&) = delete;
  PoolThread& operator=(const PoolThread&) = delete;

  // Stops the io_context and joins: after it, no completion callback runs any more.
  void Join() {
    if (!thread_.joinable()) return;
    work_.reset();
    pool_io_.stop();
    thread_.join();
  }

 private:
  asio::io_context& pool_io_;
  asio::steady_timer sweep_timer_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::thread thread_;
};

GrpcServerOptions ServerOptionsFrom(const Config& config, pool::SessionPool& pool) {
  GrpcServerOptions options;
  options.listen_address = HostPortToString(config.listen);
  options.tls = {.certificate_file = config.tls_cert_file,
                 .private_key_file = config.tls_key_file,
                 .client_ca_file = config.tls_client_ca_file};
  options.message_size_max_bytes = static_cast<int>(config.grpc_message_size_max);
  options.streams_max = static_cast<int>(config.grpc_streams_max);
  options.connections_max = config.grpc_connections_max;
  options.keepalive_time = config.keepalive_time;
  options.keepalive_timeout = config.keepalive_timeout;
  options.readiness = [&pool] { return pool.ready(); };
  return options;
}

// Null without --metrics-listen.
absl::StatusOr<std::unique_ptr<MetricsHttpServer>> StartMetricsHttp(const Config& config,
                                                                    Metrics& metrics,
                                                                    pool::SessionPool& pool) {
  if (!config.metrics_listen.has_value()) return nullptr;
  absl::StatusOr<std::unique_ptr<MetricsHttpServer>> http = MetricsHttpServer::Start(
      {.address = HostPortToString(*config.metrics_listen)},
      [&metrics] { return metrics.Exposition(); }, [&pool] { return pool.ready(); });
  if (http.ok()) {
    Log(LogLevel::kInfo, "metrics_listening", {{"port", absl::StrCat((*http)->port())}});
  }
  return http;
}

void AnnounceListening(const Config& config, const std::vector<ReplicaAddress>& replicas,
                       bool authentication, int port) {
  Log(LogLevel::kInfo, "listening",
      {{"address", HostPortToString(config.listen)},
       {"port", absl::StrCat(port)},
       {"tls", config.tls_cert_file.empty()        ? "off"
               : config.tls_client_ca_file.empty() ? "on"
                                                   : "mutual"},
       {"authentication", authentication ? "bearer" : "off"},
       {"cluster", U128ToDecimal(config.cluster_id)},
       {"replicas", AddressList(replicas)},
       {"sessions", absl::StrCat(config.sessions)},
       {"busy_poll", absl::FormatDuration(config.busy_poll)}});
  // Tests and scripts read the port from this line (stdout, one line).
  std::printf("tbproxy listening on port %d\n", port);
  std::fflush(stdout);
}

// Returns once no new gRPC call has arrived for kDrainQuiet, or after kDrainSettleMax.
void AwaitQuiet(const GrpcDrain& drain) {
  const absl::Time give_up = absl::Now() + kDrainSettleMax;
  uint64_t seen = drain.arrivals();
  while (true) {
    absl::SleepFor(std::min(kDrainQuiet, std::max(give_up - absl::Now(), absl::ZeroDuration())));
    const uint64_t now = drain.arrivals();
    if (now == seen || absl::Now() >= give_up) return;
    seen = now;
  }
}

// The end of the gRPC server, once every call tbproxy accepted is answered: new calls are held
// until callers settle, Shutdown sends the GOAWAY (and blocks until its calls are finished, so
// it runs on a thread of its own), and the held calls are refused once the GOAWAY is out. gRPC
// cancels, without any metadata, calls that reach it after Shutdown began; callers that wait for
// a held call send none (proxy/grpc/grpc_drain.h).
void StopGrpc(GrpcServer& server, GrpcDrain& drain) {
  drain.Hold();
  AwaitQuiet(drain);
  std::thread server_stop([&server] {
    NameThisThread("tb-grpc-stop");
    server.Shutdown(absl::Now() + kDrainFinishMargin);
  });
  absl::SleepFor(kDrainGoawayWait);
  drain.ReleaseHeld();
  server_stop.join();
}

// Refuses new calls (UNAVAILABLE, not_applied) and finishes open streams as their calls are
// answered; the coalescer stops intake and sends what is queued (failing what is still queued
// at the deadline, not_applied); the pool waits for replies in flight (failing the rest,
// outcome unknown); then the gRPC server stops. Every call is answered by tbproxy, with an
// outcome when it fails.
void Drain(const Config& config, GrpcServer* server, GrpcDrain& grpc_drain, Coalescer& coalescer,
           pool::SessionPool& pool) {
  const absl::Time deadline = absl::Now() + config.drain_timeout;
  if (server != nullptr) {
    server->StopServing();
    grpc_drain.Begin();
  }
  coalescer.Close();
  if (!coalescer.AwaitDrained(deadline)) {
    Log(LogLevel::kWarning, "drain_timeout", {{"detail", "queued calls fail with UNAVAILABLE"}});
    coalescer.FailQueued();
  }
  absl::Notification pool_drained;
  pool.Drain(std::max(deadline - absl::Now(), kPoolDrainMin),
             [&pool_drained] { pool_drained.Notify(); });
  pool_drained.WaitForNotification();
  if (server != nullptr) StopGrpc(*server, grpc_drain);
}

// Starts the gRPC server and the metrics listener, serves until a stop signal, then drains.
int Serve(const Config& config, const std::vector<ReplicaAddress>& replicas,
          const TokenAuthenticator* tokens, Core& core, pool::SessionPool& pool,
          const sigset_t& stop_signals) {
  GrpcService service(core.grpc_submitter,
                      {.stream_calls_max = config.stream_calls_max,
                       .stream_rpcs_max = config.stream_rpcs_max,
                       .call_memory_max = config.grpc_call_memory_max,
                       .authenticator = tokens});
  // /metrics is served only while `service` exists: metrics_http below is destroyed first.
  core.metrics.AddScrapeHook([&service](Metrics& metrics) {
    metrics.SetGrpcStreams(service.stream_rpcs().open(), service.stream_rpcs().refused());
    metrics.SetGrpcCallMemory(service.call_memory().reserved(), service.call_memory().refused());
  });
  absl::StatusOr<std::unique_ptr<GrpcServer>> server =
      GrpcServer::Start(ServerOptionsFrom(config, pool), &service);
  if (server.ok()) {
    core.metrics.AddScrapeHook([grpc = server->get()](Metrics& metrics) {
      const GrpcListenerStats connections = grpc->connection_stats();
      metrics.SetGrpcConnections(connections.open, connections.refused, connections.accept_errors);
    });
  }
  absl::StatusOr<std::unique_ptr<MetricsHttpServer>> metrics_http =
      server.ok() ? StartMetricsHttp(config, core.metrics, pool) : server.status();
  int exit_code = 0;
  if (metrics_http.ok()) {
    AnnounceListening(config, replicas, tokens != nullptr, (*server)->port());
    int signal = 0;
    sigwait(&stop_signals, &signal);
    Log(LogLevel::kInfo, "draining",
        {{"signal", absl::StrCat(signal)},
         {"timeout", absl::FormatDuration(config.drain_timeout)}});
  } else {
    LogError("start_failed", metrics_http.status());
    exit_code = 1;
  }
  Drain(config, server.ok() ? server->get() : nullptr, service.drain(), core.coalescer, pool);
  return exit_code;
}

// The native front end is built before the pool whose limit it announces, and destroyed after
// it: a call the pool fails while it is destroyed still reaches the native executor. Both run on
// pool_io, which is stopped before either is destroyed.
int RunProxy(const Config& config, const std::vector<ReplicaAddress>& replicas,
             const TokenAuthenticator* tokens, const sigset_t& stop_signals) {
  Core core(config);
  asio::io_context pool_io(1);
  absl::StatusOr<std::unique_ptr<NativeFrontend>> native =
      StartNativeFrontend(config, &core.native_submitter, pool_io);
  if (!native.ok()) {
    LogError("start_failed", native.status());
    return 1;
  }
  // /metrics is served (Serve) only while the native front end exists.
  if (*native != nullptr) SampleNativeFrontendOnScrape(core.metrics, **native);
  absl::StatusOr<std::unique_ptr<pool::SessionPool>> pool =
      CreatePool(pool_io, config, replicas, core, native->get());
  if (!pool.ok()) {
    pool_io.stop();  // Never run; the native front end on it may now close.
    LogError("config_invalid", pool.status());
    return 2;
  }
  (*pool)->Start();
  PoolThread pool_thread(pool_io, core.coalescer, config.busy_poll);
  MemoryReleaser memory_releaser(kMemoryReleaseInterval);
  const int exit_code = Serve(config, replicas, tokens, core, **pool, stop_signals);
  pool_thread.Join();
  // Every Submit callback has run (the pool drained and its thread ended).
  if (*native != nullptr) StopNativeFrontend(**native, config);
  return exit_code;
}

// Raises the descriptor limit to the hard one and warns when the connection bounds need more.
void RaiseFileDescriptorLimitFor(const Config& config) {
  absl::StatusOr<FileDescriptorLimit> limit = RaiseFileDescriptorLimit();
  if (!limit.ok()) {
    Log(LogLevel::kWarning, "fd_limit_unchanged", {{"error", std::string(limit.status().message())}});
    return;
  }
  const uint64_t needed = FileDescriptorsNeeded(config);
  if (limit->soft >= needed) return;
  Log(LogLevel::kWarning, "fd_limit_low",
      {{"limit", absl::StrCat(limit->soft)},
       {"needed", absl::StrCat(needed)},
       {"detail", "accepts fail (EMFILE) before the connection bounds refuse; raise the hard "
                  "limit (ulimit -Hn, LimitNOFILE, --ulimit nofile) or lower "
                  "--grpc-connections-max / --native-connections-max"}});
}

int Run(const Config& config, const sigset_t& stop_signals) {
  RaiseFileDescriptorLimitFor(config);
  absl::StatusOr<std::optional<TokenAuthenticator>> tokens = LoadTokens(config);
  if (!tokens.ok()) {
    LogError("config_invalid", tokens.status());
    return 2;
  }
  absl::StatusOr<std::unique_ptr<EmbeddedCluster>> embedded = StartEmbeddedCluster(config);
  if (!embedded.ok()) {
    LogError("embedded_cluster_failed", embedded.status());
    return 1;
  }
  const std::vector<ReplicaAddress> replicas =
      *embedded != nullptr ? (*embedded)->addresses() : config.cluster_addresses;
  const int exit_code =
      RunProxy(config, replicas, tokens->has_value() ? &**tokens : nullptr, stop_signals);
  if (*embedded != nullptr) (*embedded)->Stop();
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
  // sigwait in Serve receives them.
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
  tb::NormalizeFlagNames(argc, argv);
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
