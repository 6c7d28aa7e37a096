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

#include <algorithm>
#include <array>
#include <csignal>
#include <functional>
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
#include "client_core/release.h"
#include "client_core/u128.h"
#include "client_core/replica/echo_executor.h"
#include "devcluster/server.h"
#include "devcluster/state_machine.h"

ABSL_FLAG(std::string, addresses, "127.0.0.1:3000",
          "Comma-separated host:port list, one per replica in replica order (port 0 = any free "
          "port). With --replica-count=N and a single address, the replicas use consecutive "
          "ports from it (or N free ports for port 0).");
ABSL_FLAG(std::string, cluster, "0", "Cluster id (decimal u128); clients must use the same.");
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
ABSL_FLAG(uint32_t, request_queue_max, tb::devcluster::kPipelineRequestsQueuedDefault,
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

absl::StatusOr<u128> ParseU128(const std::string& text) {
  if (text.empty() || text.size() > 39) return absl::InvalidArgumentError("not a u128: " + text);
  u128 value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return absl::InvalidArgumentError("not a decimal u128: " + text);
    const u128 next = value * 10 + static_cast<u128>(c - '0');
    if (next / 10 != value) return absl::InvalidArgumentError("u128 overflow: " + text);
    value = next;
  }
  return value;
}

absl::StatusOr<std::vector<ListenAddress>> Addresses() {
  absl::StatusOr<std::vector<ListenAddress>> addresses =
      ParseListenAddresses(absl::GetFlag(FLAGS_addresses));
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
  if (!cluster.ok()) return cluster.status();
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

// Flags are spelled with dashes on the command line (--clients-max); Abseil names them with
// underscores, so the names (not the values) are translated before parsing.
std::vector<char*> UnderscoreFlagNames(int argc, char** argv, std::vector<std::string>& storage) {
  storage.assign(argv, argv + argc);
  for (size_t i = 1; i < storage.size(); i++) {
    std::string& arg = storage[i];
    if (arg == "--") break;
    if (arg.rfind("--", 0) != 0) continue;
    const size_t end = std::min(arg.find('='), arg.size());
    for (size_t j = 2; j < end; j++) {
      if (arg[j] == '-') arg[j] = '_';
    }
  }
  std::vector<char*> result;
  for (std::string& arg : storage) result.push_back(arg.data());
  return result;
}

void ScheduleTick(asio::steady_timer& timer, StateMachine& machine) {
  timer.expires_after(std::chrono::milliseconds(100));
  timer.async_wait([&timer, &machine](asio::error_code error) {
    if (error) return;
    machine.Tick(static_cast<uint64_t>(absl::GetCurrentTimeNanos()));
    ScheduleTick(timer, machine);
  });
}

int Main(int argc, char** argv) {
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
  std::vector<std::string> storage;
  std::vector<char*> args = UnderscoreFlagNames(argc, argv, storage);
  absl::ParseCommandLine(static_cast<int>(args.size()), args.data());

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
  Executor* chosen = echo ? executor.get() : machine.get();

  asio::io_context io_context(1);
  Server server(io_context, chosen, *options);
  if (absl::Status started = server.Start(); !started.ok()) {
    std::fprintf(stderr, "tb-devcluster: %s\n", std::string(started.message()).c_str());
    return 1;
  }
  std::fprintf(stderr,
               "tb-devcluster: WARNING: %s\n"
               "tb-devcluster: release %s, cluster %s, %zu replica(s), batch_size_limit %u, "
               "clients_max %u%s%s\n",
               kNotDurable, ReleaseToString(kReleaseServer).c_str(),
               U128ToDecimal(options->protocol.cluster).c_str(), options->addresses.size(),
               options->protocol.batch_size_limit, options->protocol.clients_max,
               echo ? ", echo mode (no state)" : "",
               options->faults.pipeline.prepare_latency > absl::ZeroDuration()
                   ? absl::StrCat(", pipeline model: prepare latency ",
                                  absl::FormatDuration(options->faults.pipeline.prepare_latency),
                                  ", ", options->faults.pipeline.prepares_max,
                                  " prepares in flight, request queue ",
                                  options->faults.pipeline.requests_queued_max)
                         .c_str()
                   : "");
  asio::signal_set stop_signals(io_context, SIGINT, SIGTERM);
  stop_signals.async_wait([&](asio::error_code error, int signal) {
    if (error) return;
    std::fprintf(stderr, "tb-devcluster: signal %d, stopping (all data is discarded)\n", signal);
    server.Stop();
    io_context.stop();
  });
  asio::signal_set view_signal(io_context, SIGUSR1);
  std::function<void()> wait_view_signal = [&] {
    view_signal.async_wait([&](asio::error_code error, int) {
      if (error) return;
      server.AdvanceView();
      const uint32_t view = server.view();
      std::fprintf(stderr, "tb-devcluster: view %u, primary is replica %zu\n", view,
                   view % options->addresses.size());
      wait_view_signal();
    });
  };
  wait_view_signal();
  asio::signal_set pause_signal(io_context, SIGUSR2);
  bool paused = false;
  std::function<void()> wait_pause_signal = [&] {
    pause_signal.async_wait([&](asio::error_code error, int) {
      if (error) return;
      paused = !paused;
      if (paused) {
        server.Pause();
      } else {
        server.Resume();
      }
      std::fprintf(stderr, "tb-devcluster: %s\n",
                   paused ? "paused (every message is dropped)" : "resumed");
      wait_pause_signal();
    });
  };
  wait_pause_signal();
  asio::posix::stream_descriptor input(io_context);
  std::array<char, 256> input_buffer;
  std::function<void()> read_input = [&] {
    input.async_read_some(asio::buffer(input_buffer), [&](asio::error_code error, size_t) {
      if (error == asio::error::operation_aborted) return;
      if (!error) {
        read_input();
        return;
      }
      std::fprintf(stderr, "tb-devcluster: standard input closed, stopping\n");
      server.Stop();
      io_context.stop();
    });
  };
  if (absl::GetFlag(FLAGS_stop_on_stdin_close)) {
    input.assign(::dup(STDIN_FILENO));
    read_input();
  }
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
