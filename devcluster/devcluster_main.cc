// tb-devcluster: an in-memory TigerBeetle 0.17.x cluster for development and tests. It speaks
// the client wire protocol, so the official clients and tbproxy connect to it as to a real
// cluster. Nothing is written to disk: all data is lost when the process stops.
//
//   tb-devcluster --addresses=127.0.0.1:0            # prints "listening on 127.0.0.1:NNNNN"
//   tb-devcluster --replica-count=3 --addresses=127.0.0.1:3000   # ports 3000, 3001, 3002
//   kill -USR1 <pid>                                 # view change: the next replica is primary
//   kill -USR2 <pid>                                 # pause / resume
//   tb-devcluster --prepare-latency=2ms              # a real cluster's pipeline, 2 ms per op
#include <unistd.h>

#include <array>
#include <csignal>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "asio.hpp"
#include "client_core/constants.h"
#include "client_core/parse.h"
#include "client_core/release.h"
#include "client_core/u128.h"
#include "client_core/replica/echo_executor.h"
#include "devcluster/constants.h"
#include "devcluster/server.h"
#include "devcluster/state_machine.h"

ABSL_FLAG(std::string, addresses, "127.0.0.1:3000",
          "Comma-separated host:port list, one per replica in replica order (port 0 = any free "
          "port). With --replica-count=N and a single address, the replicas use consecutive "
          "ports from it (or N free ports for port 0).");
ABSL_FLAG(std::string, cluster, "0",
          "Cluster id (decimal, or hex with 0x); clients must use the same.");
ABSL_FLAG(uint32_t, replica_count, 0,
          "Replicas to simulate (1..6); 0 = one per address. Only the primary (view % N) "
          "commits; backups forward to it.");
ABSL_FLAG(uint32_t, clients_max, tb::kClientsMaxDefault,
          "Client sessions kept; registering one more evicts the least recently committed.");
ABSL_FLAG(uint32_t, batch_size_limit, tb::kBatchSizeLimitMax,
          "Request body limit announced to clients at registration (3840..1048320); a real "
          "replica started with --development announces 32512.");
ABSL_FLAG(uint32_t, connections_max, tb::devcluster::kConnectionsPerReplicaDefault,
          "Client connections per replica; more are accepted and closed at once.");
ABSL_FLAG(bool, echo, false,
          "Answer every event without keeping state, as fast as possible: creates succeed, "
          "lookups and queries find nothing.");
ABSL_FLAG(absl::Duration, reply_delay, absl::ZeroDuration(),
          "Fault injection: hold every reply back this long (e.g. 700ms forces client retries).");
ABSL_FLAG(absl::Duration, prepare_latency, absl::ZeroDuration(),
          "Cost model of a real cluster (0 = off): a model of TigerBeetle's pipeline. Each "
          "request (registers too, pings not) becomes one prepare; at most --pipeline-max are "
          "in flight, further requests wait in arrival order (up to --request-queue-max, beyond "
          "which they are dropped and the client retries); each reply leaves this long after "
          "its request was admitted, in op order (the WAL write and replication of a real "
          "cluster, e.g. 2ms). --reply-delay, if also set, adds to it per reply.");
ABSL_FLAG(uint32_t, pipeline_max, tb::devcluster::kPipelinePreparesMaxDefault,
          "Prepares in flight with --prepare-latency (1..1024). TigerBeetle 0.17.x: "
          "pipeline_prepare_queue_max = 8 (src/config.zig).");
ABSL_FLAG(uint32_t, request_queue_max, tb::devcluster::kPipelineRequestsQueuedMaxDefault,
          "Requests waiting for a prepare slot with --prepare-latency (0..1024). TigerBeetle "
          "0.17.x: --limit-pipeline-requests, default div_ceil(clients_max, 2) - 8 = 24 "
          "(src/tigerbeetle/cli.zig).");
ABSL_FLAG(double, reply_drop_probability, 0, "Fault injection: lose replies with this chance.");
ABSL_FLAG(double, connection_reset_probability, 0,
          "Fault injection: after handling a message, reset its connection with this chance.");
ABSL_FLAG(uint64_t, fault_seed, 1, "Seed of the fault injection's random choices.");
ABSL_FLAG(bool, stop_on_stdin_close, false,
          "Stop when standard input reaches end of file, so a test harness that dies takes the "
          "cluster with it.");
ABSL_FLAG(bool, log_messages, false, "Log every dropped message, closed connection and eviction.");

namespace tb::devcluster {
namespace {

constexpr char kNotDurable[] =
    "DATA IS KEPT IN MEMORY ONLY AND IS NOT DURABLE: everything is lost when tb-devcluster "
    "stops. Never use it for real money.";

absl::StatusOr<std::vector<ListenAddress>> Addresses() {
  absl::StatusOr<std::vector<ListenAddress>> addresses = ParseHostPortList(
      absl::GetFlag(FLAGS_addresses), {.port_zero_allowed = true, .default_host = "127.0.0.1"});
  if (!addresses.ok()) return addresses.status();
  const uint32_t count = absl::GetFlag(FLAGS_replica_count);
  if (count == 0 || count == addresses->size()) return addresses;
  if (count > kReplicaCountMax) {
    return absl::InvalidArgumentError(absl::StrCat("--replica-count must be 1..", kReplicaCountMax));
  }
  if (addresses->size() != 1) {
    return absl::InvalidArgumentError("--replica-count differs from the number of --addresses");
  }
  const ListenAddress first = addresses->front();
  if (first.port != 0 && first.port + count - 1 > 65535) {
    return absl::InvalidArgumentError("not enough ports above the first address");
  }
  addresses->clear();
  for (uint32_t i = 0; i < count; i++) {
    addresses->push_back({first.host, static_cast<uint16_t>(first.port == 0 ? 0 : first.port + i)});
  }
  return addresses;
}

absl::StatusOr<ServerOptions> OptionsFromFlags() {
  ServerOptions options;
  absl::StatusOr<std::vector<ListenAddress>> addresses = Addresses();
  if (!addresses.ok()) return addresses.status();
  options.addresses = *std::move(addresses);
  absl::StatusOr<u128> cluster = ParseU128(absl::GetFlag(FLAGS_cluster));
  if (!cluster.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--cluster: ", cluster.status().message()));
  }
  options.protocol.cluster = *cluster;
  options.protocol.replica_count = static_cast<uint8_t>(options.addresses.size());
  options.protocol.clients_max = absl::GetFlag(FLAGS_clients_max);
  options.protocol.batch_size_limit = absl::GetFlag(FLAGS_batch_size_limit);
  options.connections_max = absl::GetFlag(FLAGS_connections_max);
  options.faults = FaultOptions{
      .reply_delay = absl::GetFlag(FLAGS_reply_delay),
      .reply_drop_probability = absl::GetFlag(FLAGS_reply_drop_probability),
      .connection_reset_probability = absl::GetFlag(FLAGS_connection_reset_probability),
      .seed = absl::GetFlag(FLAGS_fault_seed),
      .pipeline = {.prepare_latency = absl::GetFlag(FLAGS_prepare_latency),
                   .prepares_max = absl::GetFlag(FLAGS_pipeline_max),
                   .requests_queued_max = absl::GetFlag(FLAGS_request_queue_max)}};
  options.log_messages = absl::GetFlag(FLAGS_log_messages);
  if (absl::Status valid = ValidateServerOptions(options); !valid.ok()) return valid;
  return options;
}

void ScheduleTick(asio::steady_timer& timer, StateMachine& machine) {
  timer.expires_after(absl::ToChronoNanoseconds(kStateMachineTickInterval));
  timer.async_wait([&timer, &machine](asio::error_code error) {
    if (error) return;
    machine.Tick(static_cast<uint64_t>(absl::GetCurrentTimeNanos()));
    ScheduleTick(timer, machine);
  });
}

void ParseFlags(int argc, char** argv) {
  absl::SetProgramUsageMessage(absl::StrCat(
      "an in-memory TigerBeetle 0.17 cluster for development and tests.\n\n  ", kNotDurable,
      "\n\nUsage: tb-devcluster [--addresses=127.0.0.1:3000] [--replica-count=N] [--echo] ...\n"
      "Flags may be written with dashes or underscores. SIGUSR1 moves the primary to the next "
      "replica (view + 1); SIGUSR2 pauses or resumes (a paused cluster drops every message); "
      "SIGTERM and SIGINT stop the process."));
  absl::FlagsUsageConfig usage_config;
  usage_config.contains_help_flags = [](absl::string_view path) {
    return absl::StrContains(path, "devcluster_main");
  };
  usage_config.contains_helpshort_flags = usage_config.contains_help_flags;
  absl::SetFlagsUsageConfig(usage_config);
  // Flags are spelled with dashes on the command line (--clients-max); Abseil names them with
  // underscores.
  NormalizeFlagNames(argc, argv);
  absl::ParseCommandLine(argc, argv);
}

void PrintBanner(const ServerOptions& options, bool echo) {
  const PipelineOptions& pipeline = options.faults.pipeline;
  const std::string pipeline_text =
      pipeline.prepare_latency > absl::ZeroDuration()
          ? absl::StrCat(", pipeline model: prepare latency ",
                         absl::FormatDuration(pipeline.prepare_latency), ", ",
                         pipeline.prepares_max, " prepares in flight, request queue ",
                         pipeline.requests_queued_max)
          : "";
  std::fprintf(stderr,
               "tb-devcluster: WARNING: %s\n"
               "tb-devcluster: release %s, cluster %s, %zu replica(s), batch_size_limit %u, "
               "clients_max %u%s%s\n",
               kNotDurable, ReleaseToString(kReleaseServer).c_str(),
               U128ToDecimal(options.protocol.cluster).c_str(), options.addresses.size(),
               options.protocol.batch_size_limit, options.protocol.clients_max,
               echo ? ", echo mode (no state)" : "", pipeline_text.c_str());
}

// The process's controls, all on the io_context's thread: SIGINT/SIGTERM stop, SIGUSR1 advances
// the view, SIGUSR2 pauses or resumes, and (optionally) end of standard input stops.
class Controls {
 public:
  Controls(asio::io_context& io_context, Server& server, size_t replica_count)
      : io_context_(io_context),
        server_(server),
        replica_count_(replica_count),
        stop_signals_(io_context, SIGINT, SIGTERM),
        view_signal_(io_context, SIGUSR1),
        pause_signal_(io_context, SIGUSR2),
        input_(io_context) {}

  void Start(bool stop_on_stdin_close) {
    stop_signals_.async_wait([this](asio::error_code error, int signal) {
      if (error) return;
      std::fprintf(stderr, "tb-devcluster: signal %d, stopping (all data is discarded)\n", signal);
      Stop();
    });
    AwaitViewSignal();
    AwaitPauseSignal();
    if (stop_on_stdin_close) {
      input_.assign(::dup(STDIN_FILENO));
      ReadInput();
    }
  }

 private:
  void Stop() {
    server_.Stop();
    io_context_.stop();
  }

  void AwaitViewSignal() {
    view_signal_.async_wait([this](asio::error_code error, int) {
      if (error) return;
      server_.AdvanceView();
      const uint32_t view = server_.view();
      std::fprintf(stderr, "tb-devcluster: view %u, primary is replica %zu\n", view,
                   view % replica_count_);
      AwaitViewSignal();
    });
  }

  void AwaitPauseSignal() {
    pause_signal_.async_wait([this](asio::error_code error, int) {
      if (error) return;
      paused_ = !paused_;
      if (paused_) {
        server_.Pause();
      } else {
        server_.Resume();
      }
      std::fprintf(stderr, "tb-devcluster: %s\n",
                   paused_ ? "paused (every message is dropped)" : "resumed");
      AwaitPauseSignal();
    });
  }

  void ReadInput() {
    input_.async_read_some(asio::buffer(input_buffer_), [this](asio::error_code error, size_t) {
      if (error == asio::error::operation_aborted) return;
      if (!error) {
        ReadInput();
        return;
      }
      std::fprintf(stderr, "tb-devcluster: standard input closed, stopping\n");
      Stop();
    });
  }

  asio::io_context& io_context_;
  Server& server_;
  const size_t replica_count_;
  asio::signal_set stop_signals_;
  asio::signal_set view_signal_;
  asio::signal_set pause_signal_;
  asio::posix::stream_descriptor input_;
  std::array<char, 256> input_buffer_;
  bool paused_ = false;
};

int Main(int argc, char** argv) {
  ParseFlags(argc, argv);
  absl::StatusOr<ServerOptions> options = OptionsFromFlags();
  if (!options.ok()) {
    std::fprintf(stderr, "tb-devcluster: %s\n", std::string(options.status().message()).c_str());
    return 2;
  }
  const bool echo = absl::GetFlag(FLAGS_echo);
  std::unique_ptr<StateMachine> machine;
  std::unique_ptr<Executor> executor;
  if (echo) {
    executor = std::make_unique<EchoExecutor>();
  } else {
    machine = std::make_unique<StateMachine>(
        StateMachineOptions{.batch_size_limit = options->protocol.batch_size_limit});
  }

  asio::io_context io_context(1);
  Server server(io_context, echo ? executor.get() : machine.get(), *options);
  if (absl::Status started = server.Start(); !started.ok()) {
    std::fprintf(stderr, "tb-devcluster: %s\n", std::string(started.message()).c_str());
    return 1;
  }
  PrintBanner(*options, echo);
  Controls controls(io_context, server, options->addresses.size());
  controls.Start(absl::GetFlag(FLAGS_stop_on_stdin_close));
  asio::steady_timer tick(io_context);
  if (machine != nullptr) ScheduleTick(tick, *machine);

  // Announced only now that the signal handlers are installed: a harness may signal the
  // process as soon as it reads this line, and SIGUSR1/SIGUSR2 would otherwise end it.
  std::printf("listening on %s\n", server.ListeningAddresses().c_str());
  std::fflush(stdout);
  io_context.run();
  return 0;
}

}  // namespace
}  // namespace tb::devcluster

int main(int argc, char** argv) { return tb::devcluster::Main(argc, argv); }
