// tbproxy-loadgen: drives load through tbproxy (gRPC typed, raw or stream, or its native
// TigerBeetle-protocol port) or directly at a cluster through client_core sessions, checks every
// result, and reports one JSON object.
//
//   tbproxy-loadgen --target=127.0.0.1:50051 --path=typed --callers=256 --events=10 --duration=5s
//   tbproxy-loadgen --target=127.0.0.1:3001 --path=native --callers=1024 --events=10
//   tbproxy-loadgen --target=direct --cluster-addresses=127.0.0.1:3000 --callers=256 --sessions=64
//   tbproxy-loadgen --target=127.0.0.1:50051 --idle-streams=4096 --idle-hold=10s
//
// Exit status: 0 every call succeeded and every result checked out; 1 a call failed or a result
// was wrong (or calls were still in flight at the end); 2 bad flags or setup failed.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench/loadgen/direct_driver.h"
#include "bench/loadgen/grpc_driver.h"
#include "bench/loadgen/proc_stat.h"
#include "bench/loadgen/report.h"
#include "bench/loadgen/runner.h"
#include "bench/loadgen/workload.h"
#include "client_core/parse.h"

ABSL_FLAG(std::string, target, "127.0.0.1:50051",
          "tbproxy host:port (its gRPC port; with --path=native its --native-listen port), or "
          "\"direct\" for client_core sessions to --cluster-addresses");
ABSL_FLAG(std::string, path, "typed",
          "typed, raw or stream (gRPC), or native: one TigerBeetle-protocol session per caller "
          "to tbproxy's native port (not for direct)");
ABSL_FLAG(std::string, cluster_addresses, "", "direct: replica addresses host:port,...");
ABSL_FLAG(std::string, cluster, "0",
          "direct and native: cluster id (decimal, or hex with 0x)");
ABSL_FLAG(uint32_t, sessions, 0,
          "direct and native: sessions, each one request in flight; 0 = direct: min(callers, "
          "32) (a replica serves 32 client connections at once, PROTOCOL.md 2.4, and keeps "
          "clients_max 64 sessions); native: one per caller");
ABSL_FLAG(std::string, mix, "create_transfers",
          "Operation mix, e.g. create_transfers:90,lookup_accounts:5,lookup_transfers:5");
ABSL_FLAG(uint32_t, events, 1, "Events per call (1..8189)");
ABSL_FLAG(uint32_t, callers, 1, "Concurrent callers, each at most one call in flight");
ABSL_FLAG(uint32_t, channels, 0, "gRPC connections; 0 = one per 256 callers");
ABSL_FLAG(uint32_t, callers_per_stream, 64, "stream: calls pipelined per Stream RPC");
ABSL_FLAG(bool, stream_unordered, false, "stream: open with tbproxy-ordering: none");
ABSL_FLAG(absl::Duration, duration, absl::Seconds(5), "Measured time");
ABSL_FLAG(absl::Duration, warmup, absl::Milliseconds(500), "Warm-up (checked, not measured)");
ABSL_FLAG(double, rate, 0, "Open loop at this many calls/s; 0 = closed loop");
ABSL_FLAG(absl::Duration, call_timeout, absl::ZeroDuration(),
          "Deadline of each gRPC call; 0 = none (a call still unanswered 60 s after the run is "
          "reported as unfinished, which fails the run)");
ABSL_FLAG(uint32_t, accounts, 1024, "Accounts created by the setup (2..8189)");
ABSL_FLAG(bool, echo, false, "The cluster is an echo cluster: lookups must find nothing");
ABSL_FLAG(std::string, label, "", "Scenario label copied into the report");
ABSL_FLAG(std::string, output, "", "Also write the JSON report to this file");
ABSL_FLAG(int, proxy_pid, 0, "Sample this process's CPU time and RSS over the measured window");
ABSL_FLAG(uint32_t, idle_streams, 0, "Instead of load: hold this many idle Stream RPCs open");
ABSL_FLAG(absl::Duration, idle_hold, absl::Seconds(5), "How long to hold the idle streams");

namespace tb::bench {
namespace {

constexpr int kExitWrong = 1;
constexpr int kExitUsage = 2;
constexpr uint32_t kEventsMax = 8189;
// Client connections a real replica serves at once (PROTOCOL.md §2.4); each direct session
// needs its own, so more concurrent sessions than this cannot all be served.
constexpr uint32_t kDirectConnectionsMax = 32;

// The 1-minute load average, as a JSON number, or "" when unreadable.
std::string LoadAverage() {
  FILE* file = std::fopen("/proc/loadavg", "r");
  if (file == nullptr) return "";
  double one_minute = 0;
  const int parsed = std::fscanf(file, "%lf", &one_minute);
  std::fclose(file);
  if (parsed != 1 || !(one_minute >= 0) || one_minute > 1e6) return "";
  return absl::StrFormat("%.2f", one_minute);
}

int Usage(const std::string& message) {
  std::fprintf(stderr, "tbproxy-loadgen: %s\n", message.c_str());
  return kExitUsage;
}

void ParseFlags(int argc, char** argv) {
  absl::SetProgramUsageMessage("Load generator for tbproxy and TigerBeetle clusters.");
  NormalizeFlagNames(argc, argv);  // Accept --flag-name as well as --flag_name.
  absl::ParseCommandLine(argc, argv);
  // The Abseil build of the distribution checks every Mutex for lock-order cycles (a graph update
  // per Lock, gRPC's own mutexes included): measurable CPU that is not the system under test.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
}

// --idle-streams: holds idle Stream RPCs open instead of driving load, and reports tbproxy's RSS.
int HoldIdle(const std::string& target, uint32_t channels) {
  const int proxy_pid = absl::GetFlag(FLAGS_proxy_pid);
  ProcessSample open_sample;
  absl::Status held = HoldIdleStreams(
      target, channels, absl::GetFlag(FLAGS_idle_streams), absl::GetFlag(FLAGS_idle_hold), [&] {
        if (proxy_pid > 0) open_sample = SampleProcess(proxy_pid).value_or(ProcessSample{});
      });
  if (!held.ok()) {
    std::fprintf(stderr, "tbproxy-loadgen: idle streams: %s\n", held.ToString().c_str());
    return kExitWrong;
  }
  std::printf("{\"label\": %s, \"idle_streams\": %u, \"channels\": %u, "
              "\"proxy_rss_kb\": %llu, \"ok\": true}\n",
              JsonString(absl::GetFlag(FLAGS_label)).c_str(), absl::GetFlag(FLAGS_idle_streams),
              channels, static_cast<unsigned long long>(open_sample.rss_kb));
  return 0;
}

// The load's shape, from the flags, checked.
struct LoadFlags {
  std::string target;
  std::string path;  // "direct" for --target=direct.
  bool direct = false;
  bool native = false;
  uint32_t callers = 0;
  uint32_t channels = 0;
  uint32_t events = 0;
  uint32_t accounts = 0;
  double rate = 0;
  std::vector<MixEntry> mix;
};

// What both the load and --idle-streams need.
absl::StatusOr<LoadFlags> ConnectionFlags() {
  LoadFlags load{.target = absl::GetFlag(FLAGS_target), .callers = absl::GetFlag(FLAGS_callers)};
  if (load.callers < 1 || load.callers > kCallersMax) {
    return absl::InvalidArgumentError(absl::StrCat("--callers: 1..", kCallersMax));
  }
  load.channels = absl::GetFlag(FLAGS_channels);
  if (load.channels == 0) load.channels = std::clamp<uint32_t>((load.callers + 255) / 256, 1, 64);
  return load;
}

absl::StatusOr<LoadFlags> LoadFlagsFromFlags() {
  absl::StatusOr<LoadFlags> connection = ConnectionFlags();
  if (!connection.ok()) return connection.status();
  LoadFlags load = *std::move(connection);
  absl::StatusOr<std::vector<MixEntry>> mix = ParseMix(absl::GetFlag(FLAGS_mix));
  if (!mix.ok()) return mix.status();
  load.mix = *std::move(mix);
  load.events = absl::GetFlag(FLAGS_events);
  if (load.events < 1 || load.events > kEventsMax) {
    return absl::InvalidArgumentError("--events: 1..8189");
  }
  load.accounts = absl::GetFlag(FLAGS_accounts);
  if (load.accounts < 2 || load.accounts > kEventsMax) {
    return absl::InvalidArgumentError("--accounts: 2..8189");
  }
  load.rate = absl::GetFlag(FLAGS_rate);
  if (!(load.rate >= 0) || load.rate > 1e7) return absl::InvalidArgumentError("--rate: 0..1e7");
  if (absl::GetFlag(FLAGS_duration) <= absl::ZeroDuration() ||
      absl::GetFlag(FLAGS_warmup) < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--duration must be positive and --warmup not negative");
  }
  load.direct = load.target == "direct";
  load.path = load.direct ? "direct" : absl::GetFlag(FLAGS_path);
  load.native = !load.direct && load.path == "native";
  return load;
}

// Direct and native: client_core sessions. Native: tbproxy's TigerBeetle-protocol port takes the
// place of a cluster, and its sessions are virtual (not cluster sessions), so every caller gets
// one, as separate applications do.
absl::StatusOr<std::unique_ptr<Driver>> MakeSessionDriver(const LoadFlags& load,
                                                          uint32_t* sessions) {
  const char* addresses_flag = load.native ? "--target" : "--cluster-addresses";
  absl::StatusOr<std::vector<ReplicaAddress>> addresses =
      ParseHostPortList(load.native ? load.target : absl::GetFlag(FLAGS_cluster_addresses),
                        {.default_host = "127.0.0.1"});
  if (!addresses.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(addresses_flag, ": ", addresses.status().message()));
  }
  absl::StatusOr<u128> cluster = ParseU128(absl::GetFlag(FLAGS_cluster));
  if (!cluster.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--cluster: ", cluster.status().message()));
  }
  *sessions = absl::GetFlag(FLAGS_sessions);
  if (*sessions == 0) {
    *sessions = load.native ? load.callers : std::min(load.callers, kDirectConnectionsMax);
  }
  return MakeDirectDriver(
      {.cluster = *cluster, .addresses = *std::move(addresses), .sessions = *sessions});
}

absl::StatusOr<std::unique_ptr<Driver>> MakeGrpcPathDriver(const LoadFlags& load) {
  GrpcPath grpc_path;
  if (load.path == "typed") {
    grpc_path = GrpcPath::kTyped;
  } else if (load.path == "raw") {
    grpc_path = GrpcPath::kRaw;
  } else if (load.path == "stream") {
    grpc_path = GrpcPath::kStream;
  } else {
    return absl::InvalidArgumentError("--path: typed, raw, stream or native");
  }
  return MakeGrpcDriver({.target = load.target,
                         .path = grpc_path,
                         .callers = load.callers,
                         .channels = load.channels,
                         .callers_per_stream = absl::GetFlag(FLAGS_callers_per_stream),
                         .stream_unordered = absl::GetFlag(FLAGS_stream_unordered),
                         .call_timeout = absl::GetFlag(FLAGS_call_timeout)});
}

// Samples tbproxy at the edges of the measured window, on a thread of its own.
std::thread StartProxySampler(int proxy_pid, const RunOptions& run, ProxyCost* proxy) {
  return std::thread([proxy, proxy_pid, run] {
    absl::SleepFor(run.warmup);
    absl::StatusOr<ProcessSample> before = SampleProcess(proxy_pid);
    absl::StatusOr<ProcessSample> self_before = SampleProcess(getpid());
    absl::SleepFor(run.duration);
    absl::StatusOr<ProcessSample> after = SampleProcess(proxy_pid);
    absl::StatusOr<ProcessSample> self_after = SampleProcess(getpid());
    if (!before.ok() || !after.ok() || !self_before.ok() || !self_after.ok()) return;
    *proxy = {.sampled = true,
              .cpu_seconds = after->cpu_seconds - before->cpu_seconds,
              .rss_kb = after->rss_kb,
              .loadgen_cpu_seconds = self_after->cpu_seconds - self_before->cpu_seconds};
  });
}

// Prints the JSON report (and writes it to --output); returns the exit status.
int Report(const LoadFlags& load, uint32_t sessions, const RunResult& result,
           const ProxyCost& proxy) {
  ReportConfig config{.label = absl::GetFlag(FLAGS_label),
                      .target = load.direct ? "direct" : "tbproxy",
                      .path = load.path,
                      .mix = absl::GetFlag(FLAGS_mix),
                      .events_per_call = load.events,
                      .callers = load.callers,
                      .sessions = sessions,
                      .channels = load.direct || load.native ? 0 : load.channels,
                      .rate = load.rate,
                      .loadavg = LoadAverage()};
  const std::string json = ReportJson(config, result, proxy);
  std::printf("%s\n", json.c_str());
  std::fflush(stdout);
  const std::string output = absl::GetFlag(FLAGS_output);
  if (!output.empty()) {
    FILE* file = std::fopen(output.c_str(), "w");
    if (file == nullptr) return Usage(absl::StrCat("--output: cannot write ", output));
    std::fprintf(file, "%s\n", json.c_str());
    std::fclose(file);
  }
  for (const std::string& sample : result.error_samples) {
    std::fprintf(stderr, "tbproxy-loadgen: error: %s\n", sample.c_str());
  }
  const bool wrong = result.failures > 0 || result.unfinished > 0 || result.calls == 0;
  return wrong ? kExitWrong : 0;
}

int Main(int argc, char** argv) {
  ParseFlags(argc, argv);
  if (absl::GetFlag(FLAGS_idle_streams) > 0) {
    absl::StatusOr<LoadFlags> connection = ConnectionFlags();
    if (!connection.ok()) return Usage(std::string(connection.status().message()));
    return HoldIdle(connection->target, connection->channels);
  }
  absl::StatusOr<LoadFlags> load = LoadFlagsFromFlags();
  if (!load.ok()) return Usage(std::string(load.status().message()));
  uint32_t sessions = 0;
  absl::StatusOr<std::unique_ptr<Driver>> driver =
      load->direct || load->native ? MakeSessionDriver(*load, &sessions)
                                   : MakeGrpcPathDriver(*load);
  if (!driver.ok()) {
    std::fprintf(stderr, "tbproxy-loadgen: %s\n", driver.status().ToString().c_str());
    return kExitUsage;
  }
  Workload workload({.mix = load->mix,
                     .events_per_call = load->events,
                     .accounts = load->accounts,
                     .echo = absl::GetFlag(FLAGS_echo)});
  for (const std::shared_ptr<const Call>& call : workload.SetupCalls()) {
    absl::Status status = RunBlocking(driver->get(), call);
    if (!status.ok()) {
      std::fprintf(stderr, "tbproxy-loadgen: setup failed: %s\n", status.ToString().c_str());
      return kExitUsage;
    }
  }
  const RunOptions run{.callers = load->callers,
                       .warmup = absl::GetFlag(FLAGS_warmup),
                       .duration = absl::GetFlag(FLAGS_duration),
                       .rate = load->rate};
  ProxyCost proxy;
  const int proxy_pid = absl::GetFlag(FLAGS_proxy_pid);
  std::thread sampler = proxy_pid > 0 ? StartProxySampler(proxy_pid, run, &proxy) : std::thread();
  RunResult result = RunLoad(
      driver->get(),
      [&workload](uint64_t sequence, Call* call) { workload.FillNextCall(sequence, call); }, run);
  if (sampler.joinable()) sampler.join();
  if (result.unfinished == 0) (*driver)->Finish();
  const int exit_code = Report(*load, sessions, result, proxy);
  if (result.unfinished > 0) {
    // Calls still in flight may complete into freed memory; leave without destructors.
    std::fflush(stderr);
    std::_Exit(kExitWrong);
  }
  return exit_code;
}

}  // namespace
}  // namespace tb::bench

int main(int argc, char** argv) { return tb::bench::Main(argc, argv); }
